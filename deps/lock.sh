#!/usr/bin/env bash
# Regenerate deps/constraints.txt: the lock every install of this project uses (the README's commands, .ci/run,
# bench/device/prepare.sh's GPU wheels, deploy/Dockerfile). pyproject.toml keeps its ranges for library users;
# the lock pins the whole closure of the core and every extra (dev, server, postgres) to the versions the tests
# passed with. pip-tools compiles it with pip's own resolver and this machine's pip config.
#
#   bash deps/lock.sh                                 keep every pin pyproject still allows, add what is new
#   bash deps/lock.sh --upgrade-package transformers  move one package (and what it needs) to its newest
#   bash deps/lock.sh --upgrade                       everything to the newest allowed (run deps/latest.sh first)
#
# Then reinstall (the README's command), run the suites, and commit the lock with what it changed.
set -euo pipefail
cd "$(dirname "$0")/.."
tool=${LOCK_TOOL_VENV:-/tmp/textclf-lock-tool}
if [ ! -x "$tool/bin/pip-compile" ]; then
    python3 -m venv "$tool" && "$tool/bin/pip" install -q "pip-tools==7.7.0"
fi
CUSTOM_COMPILE_COMMAND="bash deps/lock.sh" "$tool/bin/pip-compile" --quiet --strip-extras --allow-unsafe \
    --no-emit-index-url --no-emit-find-links \
    --no-emit-trusted-host --extra dev --extra server --extra postgres --output-file deps/constraints.txt \
    "$@" pyproject.toml deps/torch.in
# torch is pinned without its build label (2.13.0, not 2.13.0+cpu): the CPU wheel here and a CUDA build of the
# same release on a GPU machine both satisfy it
sed -i -E 's/^torch==([^+ ]+)\+[A-Za-z0-9.]+/torch==\1/' deps/constraints.txt
echo "deps/constraints.txt: $(grep -c '^[A-Za-z0-9]' deps/constraints.txt) pinned distributions"
