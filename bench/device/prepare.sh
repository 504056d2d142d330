#!/usr/bin/env bash
# Build the two folders bench/device/run.sh carries to the GPU machine (bench/device/pack.py says what is in
# them), check each is under the 64 MiB one call carries, and print the carry lists. Needs the README's venv,
# TEXTCLF_ASSETS and the package registry (pip download of cp312 wheels).
#   TEXTCLF_ASSETS=../shared/assets bash bench/device/prepare.sh [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/../.."
"${PYTHON:-.venv/bin/python}" -m bench.device.pack "$@"
