#!/usr/bin/env bash
# The GPU benchmarks in two short device calls (everything they need is ~100 MiB; one call carries 64 MiB).
# Build the carried folders here first: bash bench/device/prepare.sh. Then, on the device machine:
#
#   call 1, carry [".device/part1"]:  bash bench/device/run.sh --part 1
#       unzips the wheels of what that machine lacks into .device-run/site and rebuilds IMDB's parquet files
#       in .device-run/assets (~20 s); the files stay on the machine while it is warm (about 30 s).
#   call 2, carry [".device/part2"], at once:  bash bench/device/run.sh --part 2
#       the model, then each part under its own timeout, JSON under $OUT:
#       smoke (full and LoRA runs, host-device syncs, peak memory, mfu), P1 (vs_hf_trainer at 512, bf16:
#       textclf defaults vs Trainer defaults and Trainer grouped), P3 (time_to_accuracy, MiniLM, full IMDB).
#       Exits 3 at once when part 1's files are gone (the machine went cold between the calls).
#
#   bash bench/device/run.sh --dry-run     both parts here on CPU, tiny sizes, the same code paths; the
#                                          benchmarks run with every import outside the machine's packages
#                                          and the wheelhouse refused (bench/device/imports.py). CI runs it.
#   --steps smoke,p1                       part 2 runs only these of smoke, p1, p3 (a rerun of what failed);
#                                          `--steps compile` runs bench.compile (torch.compile vs eager per
#                                          batch width at 512), not in the default set: with it part 2 would
#                                          outrun one call's 10 minutes
# Exits non-zero if any part failed. Results: $OUT (default bench-results/device): one JSON file per step,
# gpu.txt, and every step's stdout/stderr in logs.tgz (the device returns at most 8 files).
set -uo pipefail
cd "$(dirname "$0")/../.."
dry=0 part=all steps=
while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) dry=1 ;;
        --part) part=$2; shift ;;
        --steps) steps=$2; shift ;;
        *) echo "usage: bash bench/device/run.sh [--dry-run] [--part 1|2|all] [--steps smoke,p1,p3]" >&2; exit 2 ;;
    esac
    shift
done
# the dry run also runs compile, so CI covers every step
[ -n "$steps" ] || { steps=smoke,p1,p3; [ $dry = 0 ] || steps+=,compile; }
out=${OUT:-bench-results/device}
run_dir=.device-run
logs=$run_dir/logs/part$part
mkdir -p "$out" "$logs"
touch "$run_dir/started"
pack_logs() { tar czf "$out/logs-part$part.tgz" -C "$run_dir/logs" "part$part"; }
trap pack_logs EXIT  # the logs travel as one file, also when part 2 stops early
if [ $dry = 1 ]; then py=${PYTHON:-.venv/bin/python}; else py=${PYTHON:-python3}; fi
export TEXTCLF_ASSETS=$PWD/$run_dir/assets TEXTCLF_CACHE=$PWD/$run_dir/cache PYTHONUNBUFFERED=1
export PYTHONPATH=$PWD/$run_dir/site:$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}
failed=()

step() {  # name, seconds, then the command; stdout to $out/<name>.json (one JSON object) or a log, stderr a log
    local name=$1 limit=$2 start=$SECONDS rc stdout=$logs/$1.out
    shift 2
    case $name in smoke|p*) stdout=$out/$name.json ;; esac
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

part1() {
    [ -d .device/part1 ] || { echo "no .device/part1: run bench/device/prepare.sh here, carry .device/part1" >&2; exit 2; }
    rm -rf "$run_dir/site" "$run_dir/assets" "$run_dir/part1.done"
    if [ $dry = 1 ]; then  # cp312 wheels do not install into this Python: check them, keep this venv
        step wheels 60 "$py" -m bench.device.imports check-wheels .device/part1/wheels
    else
        step wheels 120 "$py" -m bench.device.unpack wheels
    fi
    step data 120 "$py" -m bench.device.unpack data
    [ ${#failed[@]} = 0 ] && date +%s > "$run_dir/part1.done"
}

part2() {
    if [ ! -f "$run_dir/part1.done" ]; then
        echo "part 1's files are gone (the machine went cold between the calls, or part 1 did not run):" \
             "run --part 1 again, then --part 2 at once" >&2
        exit 3
    fi
    [ -d .device/part2 ] || { echo "no .device/part2: carry .device/part2" >&2; exit 2; }
    step model 60 "$py" -m bench.device.unpack model
    local via=("$py" -m) figures=(-o tracking.log_figures=false)
    if [ $dry = 1 ]; then
        via=("$py" -m bench.device.imports run "$out/imports.txt")
        wanted smoke && step smoke 300 "${via[@]}" bench.device.smoke --rows 160 --max-length 32 --batch-size 16
        wanted p1 && step p1_vs_hf_trainer 300 "${via[@]}" bench.vs_hf_trainer.run --train-fraction 0.1 \
            --max-length 64 --epochs 1 --batch-size 16 --precision fp32 "${figures[@]}"
        wanted p3 && step p3_time_to_accuracy 300 "${via[@]}" bench.time_to_accuracy.run --max-length 64 \
            --test-rows 200 -o data.val_size=100 -o data.train_fraction=0.2 -o train.epochs=1 "${figures[@]}"
        wanted compile && step p4_compile 300 "${via[@]}" bench.compile.run --max-length 64 --multiple 32 \
            --steps 1 --reviews 64
    else
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
        "$py" -c "import torch; assert torch.cuda.is_available()" || { echo "no CUDA device" >&2; exit 1; }
        # limits from the first H200 run (2026-11-28): smoke 40 s, p3 64 s, p1 about 250 s
        wanted smoke && step smoke 70 "${via[@]}" bench.device.smoke
        wanted p1 && step p1_vs_hf_trainer 320 "${via[@]}" bench.vs_hf_trainer.run --train-fraction 0.5 \
            --max-length 512 --epochs 2 --batch-size 32 --precision bf16 "${figures[@]}"
        wanted p3 && step p3_time_to_accuracy 110 "${via[@]}" bench.time_to_accuracy.run --model all-MiniLM-L6-v2 \
            "${figures[@]}"
        wanted compile && step p4_compile 540 "${via[@]}" bench.compile.run --max-length 512 --batch-size 32 \
            --steps 5 --reviews 4000
    fi
    true
}

start=$SECONDS
case $part in
    1) part1 ;;
    2) part2 ;;
    all) part1; part2 ;;
    *) echo "--part: 1, 2 or all" >&2; exit 2 ;;
esac
pack_logs
trap - EXIT
written=$(find "$out" -type f -newer "$run_dir/started" | wc -l)
[ "$written" -le 8 ] || failed+=("$written files written to $out: the device machine returns at most 8")
echo "done in $((SECONDS - start)) s; results in $out"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
