#!/usr/bin/env bash
# The CPU-sized runs of docs/notebooks.md: every notebook sweep with the offline stand-ins (MiniLM-L6 for
# DistilBERT/BERT, MPNet-base for BERT-base in 001 P3, MiniLM with a fresh 3-way head for the 3-class
# RoBERTa in 002) at the reduced sizes stated per command. Each command is exactly what produced the figures;
# it runs in its own directory (stores: mlflow.db, optuna.db, mlruns/) so no study collides with a
# full-scale one. Then `textclf report --experiment E` prints each table.
#   TEXTCLF_ASSETS=../shared/assets bash sweeps/notebooks/cpu_sized.sh [WORKDIR] [EXPERIMENT...]
# MPNet: ../shared/tools/get-mpnet-base.sh first (installs assets-extra/models/all-mpnet-base-v2).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mkdir -p "${1:-notebooks-cpu}" && cd "${1:-notebooks-cpu}" && pwd)
shift || true
only=" ${*:-001p1 001p2 001p3 002swap 002freeze 003 003clean 004} "
export TEXTCLF_ASSETS=${TEXTCLF_ASSETS:-$repo/../shared/assets}
textclf=${TEXTCLF:-$repo/.venv/bin/textclf}
nb=$repo/sweeps/notebooks
cd "$work"
run() {  # id, then the command
    local id=$1; shift
    [[ $only == *" $id "* ]] || return 0
    echo "== $id: textclf $*" | tee -a commands.log
    local start=$SECONDS
    "$textclf" "$@" -o train.progress=false > "$id.out" 2> "$id.err"
    echo "   rc=$? in $((SECONDS - start)) s" | tee -a commands.log
}
minilm=all-MiniLM-L6-v2
mpnet=$repo/assets-extra/models/all-mpnet-base-v2
# 001 P1: the six points on 1% of IMDB (subset 70/10/20: ~347/50/99 reviews), 2 epochs
run 001p1 sweep "$nb/001_p1_seqlen_lr.yaml" -o model.name=$minilm -o data.train_fraction=0.01 -o train.epochs=2 \
    -o tracking.experiment=nb-001-p1-cpu
# 001 P2: 25/50/75/100% of 2% of IMDB, max length 128 (not 512), 2 epochs
run 001p2 sweep "$nb/001_p2_data_fraction.yaml" -o model.name=$minilm \
    -o "data.train_fraction=[0.005, 0.01, 0.015, 0.02]" -o data.max_length=128 -o train.batch_size=16 \
    -o train.epochs=2 -o tracking.experiment=nb-001-p2-cpu
# 001 P3: MiniLM-L6 vs MPNet-base on 1% of IMDB at max length 128, 2 epochs
run 001p3 sweep "$nb/001_p3_model_swap.yaml" -o "model.name=[$minilm, $mpnet]" -o data.train_fraction=0.01 \
    -o data.max_length=128 -o train.batch_size=16 -o train.epochs=2 -o tracking.experiment=nb-001-p3-cpu
# 002 section 2: full fine-tuning vs a re-headed 3-class checkpoint (stand-in: MiniLM saved with a fresh
# 3-way head, so it shows the re-heading, not RoBERTa's sentiment pretraining); 4% of train (~1,000 reviews)
if [[ $only == *" 002swap "* && ! -d minilm-3class ]]; then
    "$repo/.venv/bin/python" -c "import sys, transformers as t
m = t.AutoModelForSequenceClassification.from_pretrained(sys.argv[1], num_labels=3, use_safetensors=True)
m.save_pretrained(sys.argv[2]); t.AutoTokenizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2])" \
        "$TEXTCLF_ASSETS/models/$minilm" minilm-3class
fi
run 002swap sweep "$nb/002_full_and_swap.yaml" -o "model.name=[$minilm, $work/minilm-3class]" \
    -o data.train_fraction=0.04 -o data.val_size=400 -o data.test_size=1000 -o tracking.experiment=nb-002-swap-cpu
# 002 section 3: the three freeze sets, same sizes
run 002freeze sweep "$nb/002_freeze_sets.yaml" -o model.name=$minilm -o data.train_fraction=0.04 \
    -o data.val_size=400 -o data.test_size=1000 -o tracking.experiment=nb-002-freeze-cpu
# 003: all three TREC models at the notebook's full size and epochs (TREC is small), MiniLM-L6's
# architecture and vocabulary for BERT
run 003 sweep "$nb/003_scratch_prompt_partial.yaml" -o model.name=$minilm -o tracking.experiment=nb-003-cpu
# 003's leak: the partial model (4.3) on the same split with the clean parse
run 003clean train -o data.name=trec/raw/train_2000.label -o data.label_column=coarse_label \
    -o data.trec_parse=clean -o data.split=subset -o data.val_size=200 -o data.test_size=200 -o data.seed=1234 \
    -o model.name=$minilm -o model.freeze=top2 -o model.head=mlp -o model.pooling=cls -o model.mlp_hidden=256 \
    -o model.head_dropout=0.3 -o data.max_length=48 -o train.batch_size=32 -o train.eval_batch_size=200 \
    -o train.optimizer=adamw -o train.learning_rate=3e-5 -o train.weight_decay=0.01 -o train.schedule=linear \
    -o train.warmup_ratio=0.1 -o train.max_grad_norm=1.0 -o train.epochs=50 -o train.monitor=val_accuracy \
    -o train.patience=10 -o train.seed=1234 -o tracking.experiment=nb-003-cpu -o "tracking.run_name=4.3 clean parse"
# 004: from scratch vs pretrained, 1,600/400/400 reviews, max length 64 (not 256), 3 epochs
run 004 sweep "$nb/004_scratch_vs_pretrained.yaml" -o model.name=$minilm -o data.max_length=64 \
    -o tracking.experiment=nb-004-cpu
