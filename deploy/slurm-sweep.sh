#!/usr/bin/env bash
# A Slurm job array of sweep workers, one GPU each, all on one study in PostgreSQL and one tracking server.
# Each array task is one `textclf sweep` command; SLURM_ARRAY_TASK_ID gives it its own sampler seed.
#   export OPTUNA_STORAGE=postgresql://textclf@db.internal/optuna      # password in ~/.pgpass
#   export MLFLOW_TRACKING_URI=http://tracking.internal:5000           # + MLFLOW_TRACKING_USERNAME/PASSWORD
#   export TEXTCLF_ASSETS=/shared/textclf-assets
#   sbatch deploy/slurm-sweep.sh sweeps/imdb_search.yaml
#SBATCH --job-name=textclf-sweep
#SBATCH --array=0-3
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=08:00:00
#SBATCH --output=textclf-sweep-%A_%a.log
set -euo pipefail
: "${OPTUNA_STORAGE:?export OPTUNA_STORAGE=postgresql://USER@HOST/DB}"
: "${MLFLOW_TRACKING_URI:?export MLFLOW_TRACKING_URI=http://HOST:5000}"
spec=${1:-sweeps/imdb_search.yaml}
# Slurm sets CUDA_VISIBLE_DEVICES to the task's GPU; textclf uses what it can see
srun textclf sweep "$spec" --storage "$OPTUNA_STORAGE" --worker-index "${SLURM_ARRAY_TASK_ID:-0}"
