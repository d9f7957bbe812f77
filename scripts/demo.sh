#!/usr/bin/env bash
# The main job: set up, build a small scene, render it with Cycles headless, run every feature, write out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/python scripts/demo.py --out "${1:-out}"
