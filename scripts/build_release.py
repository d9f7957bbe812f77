"""Release build: one extension zip per platform, each bundling OpenCV's wheel for that platform.

Copies the source into a staging folder, fetches the wheels there (`scripts/fetch_wheels.py`, needs the
network unless `--wheels DIR` holds them already), adds `wheels = [...]` and `platforms = [...]` to the
staged manifest and runs Blender's `build --split-platforms`. The repository itself stays wheel-free, so the
tests and `scripts/build_zip.sh` (the universal zip, OpenCV installed from the Dependencies panel) need no
download.

    .venv/bin/python scripts/build_release.py [--wheels DIR] [--out dist]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import fetch_wheels  # noqa: E402



def platform_of(wheel: str) -> str | None:
    if "win_amd64" in wheel:
        return "windows-x64"
    if "manylinux" in wheel and "x86_64" in wheel:
        return "linux-x64"
    if "macosx" in wheel:
        return "macos-arm64" if "arm64" in wheel else "macos-x64"
    return None


def blender_ext_tool() -> Path:
    origin = Path(importlib.util.find_spec("bpy").origin).parent
    return origin / "5.0" / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", type=Path, help="folder that already holds the wheels (skips the download)")
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    args = ap.parse_args(argv)
    stage = Path(tempfile.mkdtemp(prefix="art_ai_release_")) / "art_ai"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, stage / rel)
    wheel_dir = stage / "wheels"
    if args.wheels:
        shutil.copytree(args.wheels, wheel_dir)
    elif fetch_wheels.main(["--dest", str(wheel_dir)]) != 0:
        print("build_release: some wheels could not be fetched", file=sys.stderr)
        return 1
    wheels = sorted(w.name for w in wheel_dir.glob("*.whl"))
    platforms = sorted({p for p in map(platform_of, wheels) if p})
    manifest = stage / "blender_manifest.toml"
    text = manifest.read_text()
    lines = "\n".join(f'  "./wheels/{w}",' for w in wheels)
    extra = f"\nplatforms = {platforms!r}\n\nwheels = [\n{lines}\n]\n".replace("'", '"')
    head, sep, tail = text.partition("\n[permissions]")  # top-level keys must come before the first table
    manifest.write_text(head + extra + sep + tail)
    args.out.mkdir(parents=True, exist_ok=True)
    tool = str(blender_ext_tool())
    subprocess.run([sys.executable, tool, "validate", str(stage)], check=True)
    subprocess.run([sys.executable, tool, "build", "--source-dir", str(stage), "--output-dir", str(args.out.resolve()),
                    "--split-platforms"], check=True)
    shutil.rmtree(stage.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
