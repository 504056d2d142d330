#!/usr/bin/env bash
# Every GPU benchmark of issue 6, one after another, each writing its JSON to $RESULTS/<name>.json
# (default bench-results/), with the GPU and driver recorded first. Needs the README's venv (CUDA torch)
# and TEXTCLF_ASSETS; the MPNet-base run needs ../shared/tools/get-mpnet-base.sh first (skipped without).
#   TEXTCLF_ASSETS=../shared/assets bash bench/run_gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
out=${RESULTS:-bench-results}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1 || true
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" \
    || { echo "no GPU: these benchmarks are GPU figures"; exit 1; }
run() {  # name, then the benchmark's arguments
    local name=$1; shift
    echo "== $name: $*"
    local start=$SECONDS
    "$py" "$@" > "$out/$name.json" 2> "$out/$name.err"
    echo "   rc=$? in $((SECONDS - start)) s -> $out/$name.json"
}
mpnet=${MPNET:-assets-extra/models/all-mpnet-base-v2}
run vs_hf_trainer_bf16 -m bench.vs_hf_trainer.run --train-fraction 0.7 --max-length 512 --epochs 3 --batch-size 32 --precision bf16
run vs_hf_trainer_fp32 -m bench.vs_hf_trainer.run --train-fraction 0.7 --max-length 512 --epochs 3 --batch-size 32 --precision fp32
run group_by_length -m bench.group_by_length.run --train-fraction 0.5 --max-length 512 --epochs 1 --batch-size 32
run time_to_accuracy_minilm -m bench.time_to_accuracy.run --model all-MiniLM-L6-v2
if [ -f "$mpnet/model.safetensors" ]; then
    run time_to_accuracy_mpnet -m bench.time_to_accuracy.run --model "$mpnet"
else
    echo "== time_to_accuracy_mpnet skipped: $mpnet not installed (../shared/tools/get-mpnet-base.sh)"
fi
run sweep -m bench.sweep.run
run logging_overhead -m bench.logging_overhead.run --train-fraction 0.25 --max-length 256 --epochs 2
