#!/usr/bin/env bash
# The test command: set up the environments, lint, type-check the Blender layer, run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
start=$(date +%s)
echo "== ruff" >&2
.venv/bin/ruff check .
echo "== mypy (Blender layer, fake-bpy-module stubs)" >&2
bash scripts/typecheck.sh
echo "== pytest" >&2
.venv/bin/python -m pytest -q "$@"
echo "test.sh: done in $(( $(date +%s) - start )) s" >&2
