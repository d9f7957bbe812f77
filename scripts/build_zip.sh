#!/usr/bin/env bash
# Build the installable extension zip into dist/ with Blender's own tool (from the bpy wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
tool=$(.venv/bin/python -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("bpy").origin).parent / "5.0/scripts/addons_core/bl_pkg/cli/blender_ext.py")')
mkdir -p dist
.venv/bin/python "$tool" validate .
.venv/bin/python "$tool" build --source-dir . --output-dir dist "$@"
