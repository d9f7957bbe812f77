#!/usr/bin/env bash
# Build Art AI with Blender's own tool (from the bpy wheel), one zip per platform, OpenCV bundled:
#   bash scripts/build_zip.sh [--platform]   extensions-platform build (default) -> dist/platform/
#   bash scripts/build_zip.sh --full         + PyTorch environment creator, a self-hosted repository -> dist/full/
# More options (--platforms linux-x64,..., --out DIR, --wheels DIR, --offline): scripts/build_release.py --help
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python scripts/build_release.py "$@"
