#!/usr/bin/env bash
# The "latest" check, off CI's required path: install the newest versions pyproject.toml allows (no lock) into a
# scratch venv, print what differs from deps/constraints.txt, then run the fast suite there. A release that
# breaks textclf (transformers 5.25's Hub kernels, 2026-12-05) is found on purpose, here, instead of by a red CI
# on a fresh clone. What it found each time: docs/dependencies.md.
#
#   bash deps/latest.sh                  the fast suite (~15-25 min on 2 cores)
#   bash deps/latest.sh tests/model      any pytest arguments instead
#
# torch stays at the lock's release: this machine kind's CPU wheel lies on disk, and a newer torch from PyPI is
# the CUDA build (~3 GB). The scratch venv: $LATEST_VENV (default /tmp/textclf-latest), made anew each time.
set -uo pipefail
cd "$(dirname "$0")/.."
venv=${LATEST_VENV:-/tmp/textclf-latest}
rm -rf "$venv"
python3 -m venv "$venv"
torch_pin=$(mktemp) && grep '^torch==' deps/constraints.txt > "$torch_pin"
"$venv/bin/pip" install -q --upgrade --upgrade-strategy eager -c "$torch_pin" -e '.[dev]' 2>&1 \
    | grep -v "^WARNING: Location" || true
"$venv/bin/python" deps/drift.py deps/constraints.txt
# every test but the one that holds the installed versions to the lock (they differ here on purpose)
TEXTCLF_ASSETS=${TEXTCLF_ASSETS:-../shared/assets} "$venv/bin/python" -m pytest -p no:cacheprovider \
    --deselect tests/test_lock.py::test_installed_versions_are_the_locks "${@:--q}"
