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
