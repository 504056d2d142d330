#!/usr/bin/env bash
# The GPU benchmarks in ONE device call: everything they need is one carried folder under 64 MiB, and the
# steps' time limits add up to at most 540 s (this script checks both before it starts). Build the folder
# here first: bash bench/device/prepare.sh. Then, on the device machine:
#
#   carry [".device/run"], timeout_s 600:  bash bench/device/run.sh
#       unzips the wheels of what that machine lacks into .device-run/site, rebuilds the IMDB part's parquet
#       files and the MiniLM weights in .device-run/assets, then each step under its own timeout, JSON under
#       $OUT: smoke (full and LoRA runs, host-device syncs, peak memory, mfu), sizes (bench/sizes: random-init
#       BERT-base and BERT-large at 256 and 512, textclf's defaults and levers vs Trainer's defaults), P1
#       (vs_hf_trainer at 512, bf16, on the carried IMDB part), P3 (time_to_accuracy, MiniLM, the carried part).
#
#   bash bench/device/run.sh --dry-run     the same steps here on CPU, tiny sizes, the same code paths; the
#                                          benchmarks run with every import outside the machine's packages
#                                          and the wheelhouse refused (bench/device/imports.py). CI runs it.
#   --steps smoke,sizes                    only these of smoke, sizes, p1, p3 (a rerun of what failed)
# Exits non-zero if any step failed. Results: $OUT (default bench-results/device): one JSON file per step,
# gpu.txt, and every step's stdout/stderr in logs.tgz (the device returns at most 8 files).
set -uo pipefail
cd "$(dirname "$0")/../.."
dry=0 steps=smoke,sizes,p1,p3
while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) dry=1 ;;
        --steps) steps=$2; shift ;;
        *) echo "usage: bash bench/device/run.sh [--dry-run] [--steps smoke,sizes,p1,p3]" >&2; exit 2 ;;
    esac
    shift
done
# seconds per step on the GPU machine (the sums below are checked against one call's 9 minutes of work)
declare -A LIMIT=([wheels]=45 [data]=20 [model]=20 [smoke]=50 [sizes]=260 [p1]=80 [p3]=60)
budget=540
out=${OUT:-bench-results/device}
run_dir=.device-run
logs=$run_dir/logs
carried=.device/run
total=$(( LIMIT[wheels] + LIMIT[data] + LIMIT[model] ))
for s in ${steps//,/ }; do
    [ -n "${LIMIT[$s]:-}" ] && [ "$s" != wheels ] && [ "$s" != data ] && [ "$s" != model ] ||
        { echo "--steps: $s is not one of smoke, sizes, p1, p3" >&2; exit 2; }
    total=$(( total + LIMIT[$s] ))
done
[ $total -le $budget ] || { echo "the steps' limits add up to $total s: over one call's $budget s" >&2; exit 2; }
[ -d $carried ] || { echo "no $carried: run bench/device/prepare.sh here, carry $carried" >&2; exit 2; }
mib=$(du -sm --apparent-size $carried | cut -f1)
[ "$mib" -le 64 ] || { echo "$carried is $mib MiB: over the 64 MiB one call carries" >&2; exit 2; }
echo "one call: $carried ${mib} MiB of 64, step limits $total s of $budget"
rm -rf "$run_dir/site" "$run_dir/assets" "$logs"
mkdir -p "$out" "$logs"
touch "$run_dir/started"
pack_logs() { tar czf "$out/logs.tgz" -C "$run_dir" logs; }
trap pack_logs EXIT  # the logs travel as one file, also when a step stops the script early
if [ $dry = 1 ]; then py=${PYTHON:-.venv/bin/python}; else py=${PYTHON:-python3}; fi
export TEXTCLF_ASSETS=$PWD/$run_dir/assets TEXTCLF_CACHE=$PWD/$run_dir/cache PYTHONUNBUFFERED=1
export PYTHONPATH=$PWD/$run_dir/site:$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}
failed=()

step() {  # name, then the command; stdout to $out/<name>.json (one JSON object) or a log, stderr a log
    local name=$1 limit=${LIMIT[$1]} start=$SECONDS rc stdout=$logs/$1.out
    shift
    [ $dry = 1 ] && limit=300
    case $name in smoke|sizes|p*) stdout=$out/$name.json ;; esac
    echo "== $name (limit ${limit} s): $*"
    timeout --kill-after=10 "$limit" "$@" > "$stdout" 2> "$logs/$name.err"
    rc=$?
    if [ $rc = 0 ] && [ "$stdout" = "$out/$name.json" ] &&
        ! "$py" -c 'import json, sys; json.load(open(sys.argv[1]))' "$stdout" 2>/dev/null; then
        rc="not one JSON object on stdout"
    fi
    echo "   rc=$rc in $((SECONDS - start)) s"
    [ "$rc" = 0 ] || { failed+=("$name ($rc)"); tail -5 "$logs/$name.err"; }
}

wanted() { [[ ,$steps, == *,$1,* ]]; }

start=$SECONDS
if [ $dry = 1 ]; then  # cp312 wheels do not install into this Python: check them, keep this venv
    step wheels "$py" -m bench.device.imports check-wheels $carried/wheels
else
    step wheels "$py" -m bench.device.unpack wheels
fi
step data "$py" -m bench.device.unpack data
step model "$py" -m bench.device.unpack model
[ ${#failed[@]} = 0 ] || { echo "FAILED: ${failed[*]}" >&2; exit 1; }
via=("$py" -m) figures=(-o tracking.log_figures=false) tok=(--model all-MiniLM-L6-v2)
if [ $dry = 1 ]; then
    via=("$py" -m bench.device.imports run "$out/imports.txt")
    wanted smoke && step smoke "${via[@]}" bench.device.smoke --rows 160 --max-length 32 --batch-size 16
    wanted sizes && step sizes "${via[@]}" bench.sizes.run "${tok[@]}" --sizes tiny --lengths 64 --steps 2 \
        --batch-size 8 --compile-sizes tiny
    wanted p1 && step p1 "${via[@]}" bench.vs_hf_trainer.run --train-fraction 0.1 \
        --max-length 64 --epochs 1 --batch-size 16 --precision fp32 "${figures[@]}"
    wanted p3 && step p3 "${via[@]}" bench.time_to_accuracy.run --max-length 64 --train-rows 400 \
        --test-rows 200 -o data.val_size=100 -o train.epochs=1 "${figures[@]}"
else
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
    "$py" -c "import torch; assert torch.cuda.is_available()" || { echo "no CUDA device" >&2; exit 1; }
    wanted smoke && step smoke "${via[@]}" bench.device.smoke --rows 4000
    # the levers at BERT-base, BERT-large at textclf's defaults (each cell builds a model: large ones take
    # seconds on the host); 30 optimizer steps per cell; a timeout still leaves the cells measured
    wanted sizes && step sizes "${via[@]}" bench.sizes.run "${tok[@]}" --sizes base,large --lengths 256,512 \
        --steps 30 --batch-size 32 --precision bf16 --compile-sizes base --lever-sizes base
    wanted p1 && step p1 "${via[@]}" bench.vs_hf_trainer.run --train-fraction 1.0 --max-length 512 --epochs 2 \
        --batch-size 32 --precision bf16 "${figures[@]}"
    wanted p3 && step p3 "${via[@]}" bench.time_to_accuracy.run --model all-MiniLM-L6-v2 --max-length 512 \
        "${figures[@]}"
fi
pack_logs
trap - EXIT
written=$(find "$out" -type f -newer "$run_dir/started" | wc -l)
[ "$written" -le 8 ] || failed+=("$written files written to $out: the device machine returns at most 8")
echo "done in $((SECONDS - start)) s; results in $out"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
