#!/usr/bin/env python3
"""Download the OpenCV wheels the extension bundles, one per Blender platform, into a cache (./wheels/).

Blender ships numpy but not OpenCV, so the manifest lists per-platform wheels (`wheels = [...]`) and
`blender --command extension build --split-platforms` makes one zip per platform. This script fetches
them for Blender's Python (3.11) with `pip download --only-binary=:all: --platform ...` (only those the cache
lacks) and prints the manifest lines. It needs PyPI; scripts/setup_env.sh prefetches the linux-x64 wheel the
tests build with, and the tests never download.

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


def platform_of(wheel: str) -> str | None:
    """The Blender platform a wheel file name is for (None: pure Python or another platform)."""
    if "win_amd64" in wheel:
        return "windows-x64"
    if "linux" in wheel and "x86_64" in wheel:
        return "linux-x64"
    if "macosx" in wheel:
        return "macos-arm64" if "arm64" in wheel or "universal2" in wheel else "macos-x64"
    return None


def cached(requirement: str, dest: Path) -> dict[str, Path]:
    """{platform: wheel} already in `dest` for this requirement (name==version)."""
    name, _, version = requirement.partition("==")
    stem = name.strip().replace("-", "_").lower()
    found = {}
    for w in sorted(Path(dest).glob("*.whl")):
        parts = w.name.split("-")
        if parts[0].lower() == stem and (not version or parts[1] == version.strip()):
            plat = platform_of(w.name)
            if plat:
                found.setdefault(plat, w)
    return found


def fetch(requirement: str, platforms, dest: Path, *, offline: bool = False,
          python_version: str = "3.11") -> dict[str, Path]:
    """{platform: wheel path} for each platform, downloading only what `dest` (a cache) lacks; with `offline`
    nothing is downloaded. Raises SystemExit with what to run when a wheel is missing."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    have = cached(requirement, dest)
    for name in platforms:
        if name in have or offline:
            continue
        cmd = pip_download_command(requirement, PLATFORMS[name], dest, python_version)
        print(f"[{name}] {' '.join(cmd)}", file=sys.stderr)
        subprocess.run(cmd, stdout=subprocess.DEVNULL)
        have = cached(requirement, dest)
    missing = [p for p in platforms if p not in have]
    if missing:
        raise SystemExit(f"fetch_wheels: no {requirement} wheel for {', '.join(missing)} in {dest}; run "
                         f"`python scripts/fetch_wheels.py --dest {dest} "
                         + " ".join(f"--platform {p}" for p in missing) + "` (needs PyPI)")
    return {p: have[p] for p in platforms}


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
    wanted = args.platform or list(PLATFORMS)
    try:
        got = fetch(args.requirement, wanted, args.dest, python_version=args.python_version)
        failed = []
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        got = cached(args.requirement, args.dest)
        failed = [p for p in wanted if p not in got]
    wheels = sorted(got.values())
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
