#!/usr/bin/env bash
# Type-check the Blender layer against fake-bpy-module stubs, in an environment of its own (the stubs and the
# real bpy are both called `bpy`). The 5.0 stubs use Python 3.12 syntax, so this env needs Python >= 3.12.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python312() {
  local cands=("${TYPES_PYTHON:-}" python3.13 python3.12)
  if command -v pyenv >/dev/null 2>&1; then
    for d in "$(pyenv root)"/versions/3.1[2-9]*; do cands+=("$d/bin/python3"); done
  fi
  for c in "${cands[@]}"; do
    [ -n "$c" ] || continue
    if "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then echo "$c"; return 0; fi
  done
  return 1
}

VENV=.venv-types
want=$(cat requirements-types.txt | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/mypy" ] || [ "$(cat "$VENV/.requirements.sha" 2>/dev/null)" != "$want" ]; then
  PY=$(find_python312) || { echo "typecheck: needs Python >= 3.12 for the fake-bpy-module 5.0 stubs; set TYPES_PYTHON=" >&2; exit 1; }
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q -r requirements-types.txt
  echo "$want" > "$VENV/.requirements.sha"
fi
"$VENV/bin/mypy" art_ai_addon/blender
