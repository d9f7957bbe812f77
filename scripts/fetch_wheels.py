#!/usr/bin/env python3
"""Download the OpenCV wheels the extension bundles, one per Blender platform, into ./wheels/.

Blender ships numpy but not OpenCV, so the manifest lists per-platform wheels (`wheels = [...]`) and
`blender --command extension build --split-platforms` makes one zip per platform. This script fetches
them for Blender's Python (3.11) with `pip download --only-binary=:all: --platform ...` and prints the
manifest lines. It needs the network; it is a release step, never run by the tests or CI.

    python scripts/fetch_wheels.py [--requirement opencv-python-headless==4.11.0.86] [--dest wheels]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Blender platform -> pip platform tags (pip also accepts older manylinux/macOS versions of these).
# Blender 4.2+ needs glibc 2.28 on Linux; OpenCV 4.11's macOS wheels are built for macOS 13.
PLATFORMS = {
    "windows-x64": ["win_amd64"],
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "macos-arm64": ["macosx_14_0_arm64"],
    "macos-x64": ["macosx_14_0_x86_64"],
}


def pip_download_command(requirement: str, platform_tags: list[str], dest: Path, python_version: str) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:",
           "--no-deps",  # numpy comes with Blender; a second copy in the zip would shadow it
           "--python-version", python_version, "--implementation", "cp", "--dest", str(dest)]
    for tag in platform_tags:
        cmd += ["--platform", tag]
    return cmd + [requirement]


def default_requirement() -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip().startswith("opencv-python-headless"):
            return line.split("#")[0].strip()
    return "opencv-python-headless"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requirement", default=default_requirement())
    ap.add_argument("--dest", type=Path, default=ROOT / "wheels")
    ap.add_argument("--python-version", default="3.11", help="Blender's Python version (default 3.11)")
    ap.add_argument("--platform", action="append", choices=sorted(PLATFORMS), help="only these (default: all)")
    args = ap.parse_args(argv)
    args.dest.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in args.platform or list(PLATFORMS):
        cmd = pip_download_command(args.requirement, PLATFORMS[name], args.dest, args.python_version)
        print(f"[{name}] {' '.join(cmd)}", file=sys.stderr)
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
    wheels = sorted(args.dest.glob("*.whl"))
    print("\n# blender_manifest.toml")
    print("wheels = [")
    base = args.dest.resolve().parent
    for w in wheels:
        print(f'  "./{w.resolve().relative_to(base).as_posix()}",')
    print("]")
    print(f"platforms = {sorted(set(args.platform or PLATFORMS) - set(failed))!r}".replace("'", '"'))
    if failed:
        print(f"fetch_wheels: no wheel for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
