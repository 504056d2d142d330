#!/usr/bin/env bash
# The notebooks' qualitative claims re-checked at CPU scale where the faithful CPU-sized runs cannot show
# them (docs/notebooks.md): MiniLM-L6 at its own learning rate (1e-4; the notebooks' 1e-5-range rates
# barely move it in 2 epochs), configs/quickstart.yaml's pooled split so every run is scored on the same
# 200 validation and 500 test reviews, seed repeats where the claim rests on small differences.
#   TEXTCLF_ASSETS=../shared/assets bash sweeps/notebooks/claims.sh [WORKDIR] [CHECK...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mkdir -p "${1:-notebooks-cpu}" && cd "${1:-notebooks-cpu}" && pwd)
shift || true
only=" ${*:-context leak} "  # scaling: run it by name (~7 min more)
export TEXTCLF_ASSETS=${TEXTCLF_ASSETS:-$repo/../shared/assets}
textclf=${TEXTCLF:-$repo/.venv/bin/textclf}
cd "$work"
train() {  # id, then the overrides
    local id=$1; shift
    echo "== $id: textclf train $*" | tee -a commands.log
    local start=$SECONDS
    "$textclf" train "$@" -o train.progress=false -o tracking.log_model=false > "$id.out" 2> "$id.err"
    echo "   rc=$? in $((SECONDS - start)) s" | tee -a commands.log
}
quick=$repo/configs/quickstart.yaml
# "Longer context helps" (001 P1): max length 128 vs 256, ~600 training reviews, 2 epochs, 2 seeds each
if [[ $only == *" context "* ]]; then
    for seed in 42 43; do
        for length in 128 256; do
            train "context-$length-$seed" --config "$quick" -o data.train_fraction=0.0123 -o data.max_length=$length \
                -o train.seed=$seed -o tracking.experiment=nb-claims-context
        done
    done
fi
# "The TREC leak inflates accuracy" (003): 4.3's model with the notebook's and the clean parse, seed 1
# (seed 1234 of each is in the CPU-sized runs)
if [[ $only == *" leak "* ]]; then
    for seed in 1; do
        for parse in notebook clean; do
            train "leak-$parse-$seed" -o data.name=trec/raw/train_2000.label -o data.label_column=coarse_label \
                -o data.trec_parse=$parse -o data.split=subset -o data.val_size=200 -o data.test_size=200 \
                -o data.seed=1234 -o model.name=all-MiniLM-L6-v2 -o model.freeze=top2 -o model.head=mlp \
                -o model.pooling=cls -o model.mlp_hidden=256 -o model.head_dropout=0.3 -o data.max_length=48 \
                -o train.batch_size=32 -o train.eval_batch_size=200 -o train.optimizer=adamw \
                -o train.learning_rate=3e-5 -o train.weight_decay=0.01 -o train.schedule=linear \
                -o train.warmup_ratio=0.1 -o train.max_grad_norm=1.0 -o train.epochs=50 \
                -o train.monitor=val_accuracy -o train.patience=10 -o train.seed=$seed \
                -o tracking.experiment=nb-003-cpu -o "tracking.run_name=4.3 $parse parse seed $seed"
        done
    done
fi
# "Diminishing returns" (001 P2): ~300 / 600 / 1,200 / 2,400 training reviews (nested), max length 128, 2 epochs
if [[ $only == *" scaling "* ]]; then
    for fraction in 0.0062 0.0123 0.0246 0.0492; do
        train "scaling-$fraction" --config "$quick" -o data.train_fraction=$fraction \
            -o tracking.experiment=nb-claims-scaling
    done
fi
