"""Build Art AI's two flavours with Blender's own extension tool (from the bpy wheel).

`--platform` (default): extensions-platform rules. One zip per platform (windows-x64, linux-x64, macos-arm64,
macos-x64; `blender_ext.py build --split-platforms`), each bundling OpenCV's wheel for it (manifest
`wheels = [...]`), with no run-time installer: art_ai_addon/torch_env.py (the PyTorch environment creator) is
left out and the user points Art AI at a Python that has PyTorch. Output: dist/platform/.

`--full`: the same zips plus the environment creator, published as a self-hosted remote repository:
dist/full/ holds the zips and the `index.json` (and `index.html`) that `blender_ext.py server-generate` writes.
Serve that folder over HTTP(S) and add `<URL>/index.json` in Blender (Preferences > Get Extensions >
Repositories > + > Add Remote Repository).

Both: the source is copied to a staging folder; there the manifest gets `platforms`, `wheels`, the bundled
wheels' copyright lines and the flavour's network reason, and `art_ai_addon/_build.py` gets FLAVOUR; the staged
manifest and every zip are validated with Blender's tag list (`--valid-tags`). The repository stays wheel-free.
Wheels come from a cache (default ./wheels/, or $ART_AI_WHEEL_CACHE), downloaded with `pip download` into it
when missing (`--offline` never downloads).

    .venv/bin/python scripts/build_release.py [--platform | --full] [--platforms linux-x64,...] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import fetch_wheels  # noqa: E402

FLAVOURS = ("platform", "full")
PLATFORMS = tuple(fetch_wheels.PLATFORMS)  # windows-x64, linux-x64, macos-arm64, macos-x64
CREATOR = "art_ai_addon/torch_env.py"  # the PyTorch environment creator: full build only
# What goes over the network, per flavour (Blender allows 64 characters, no final punctuation).
NETWORK = {
    "platform": "Model weights you ask for, from their authors' published links",
    "full": "Model weights you ask for; PyTorch from pytorch.org and PyPI",
}
# Copyright lines of what the bundled wheels carry (manifest `copyright`), by wheel name prefix.
BUNDLED_COPYRIGHT = {
    "opencv_python_headless": ["2000-2025 OpenCV team, OpenCV (Apache-2.0), bundled",
                               "2000-2025 FFmpeg developers, in the OpenCV wheel (LGPL-2.1)"],
}


def bpy_dir() -> Path:
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.origin:
        raise SystemExit("build: the bpy module is not installed (run scripts/setup_env.sh)")
    return Path(spec.origin).parent


def blender_ext_tool() -> Path:
    return bpy_dir() / "5.0" / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


def valid_tags_file() -> Path:
    """Blender's own tag list (the one extensions.blender.org uses), a Python file with `addons = {...}`."""
    return bpy_dir() / "5.0" / "scripts" / "modules" / "_bpy_internal" / "extensions" / "tags.py"


def wheel_cache() -> Path:
    return Path(os.environ.get("ART_AI_WHEEL_CACHE") or ROOT / "wheels")


def opencv_requirement() -> str:
    return fetch_wheels.default_requirement()


def run_tool(*args: str) -> str:
    res = subprocess.run([sys.executable, str(blender_ext_tool()), *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"build: blender_ext.py {args[0]} failed:\n{res.stdout}{res.stderr}")
    return res.stdout


def source_files() -> list[str]:
    """Tracked and new (not ignored) files; a plain walk when this is not a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
        return [f for f in out.split("\0") if f and (ROOT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "dist", "wheels", "__pycache__"}
        return [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]


def _toml_list(values) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def stage_manifest(text: str, flavour: str, platforms, wheels: list[str]) -> str:
    """The staged manifest: platforms, wheels, bundled copyright, the flavour's network reason and exclusions."""
    copyright_lines = re.search(r"^copyright = (\[.*?\])$", text, re.M | re.S)
    lines = json.loads(copyright_lines.group(1)) if copyright_lines else []
    for prefix, extra in BUNDLED_COPYRIGHT.items():
        if any(w.startswith(prefix) for w in wheels):
            lines += [x for x in extra if x not in lines]
    text = re.sub(r"^copyright = \[.*?\]\n", "", text, flags=re.M | re.S)
    top = (f"\nplatforms = {_toml_list(platforms)}\n"
           f"wheels = [\n" + "".join(f"  {json.dumps('./wheels/' + w)},\n" for w in wheels) + "]\n"
           f"copyright = {_toml_list(lines)}\n")
    text = re.sub(r"^# the build sets this.*\n", "", text, flags=re.M)
    head, sep, tail = text.partition("\n[permissions]")  # top-level keys must come before the first table
    tail = re.sub(r'^network = ".*"$', f"network = {json.dumps(NETWORK[flavour])}", tail, count=1, flags=re.M)
    if flavour == "platform":
        tail = tail.replace("paths_exclude_pattern = [\n", f'paths_exclude_pattern = [\n  "/{CREATOR}",\n', 1)
    return head.rstrip("\n") + "\n" + top + sep + tail


def build(flavour: str = "platform", out_dir: Path | None = None, platforms=PLATFORMS, *,
          wheels_dir: Path | None = None, offline: bool = False) -> list[Path]:
    """Build `flavour` for `platforms` into out_dir (default dist/<flavour>); the zips (full: + index.json)."""
    if flavour not in FLAVOURS:
        raise SystemExit(f"build: flavour must be one of {', '.join(FLAVOURS)}, not {flavour!r}")
    unknown = [p for p in platforms if p not in PLATFORMS]
    if unknown:
        raise SystemExit(f"build: unknown platform {', '.join(unknown)}; use {', '.join(PLATFORMS)}")
    out_dir = Path(out_dir or ROOT / "dist" / flavour).resolve()
    wheels = fetch_wheels.fetch(opencv_requirement(), list(platforms), wheels_dir or wheel_cache(), offline=offline)
    stage_root = Path(tempfile.mkdtemp(prefix=f"art_ai_{flavour}_"))
    try:
        stage = stage_root / "art_ai"
        for rel in source_files():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, stage / rel)
        (stage / "wheels").mkdir(exist_ok=True)
        for w in wheels.values():
            shutil.copy2(w, stage / "wheels" / w.name)
        manifest = stage / "blender_manifest.toml"
        manifest.write_text(stage_manifest(manifest.read_text(), flavour, platforms,
                                           sorted(w.name for w in wheels.values())))
        (stage / "art_ai_addon" / "_build.py").write_text(
            f'"""Written by scripts/build_release.py."""\n\nFLAVOUR = "{flavour}"\n')
        tags = str(valid_tags_file())
        run_tool("validate", "--valid-tags", tags, str(stage))
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("art_ai-*.zip"):
            old.unlink()
        run_tool("build", "--source-dir", str(stage), "--output-dir", str(out_dir), "--split-platforms",
                 "--valid-tags", tags)
    finally:
        shutil.rmtree(stage_root, ignore_errors=True)
    zips = sorted(out_dir.glob("art_ai-*.zip"))
    for z in zips:
        run_tool("validate", "--valid-tags", tags, str(z))
    if flavour == "full":
        run_tool("server-generate", "--repo-dir", str(out_dir), "--html")
        return zips + [out_dir / "index.json"]
    return zips


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    kind = ap.add_mutually_exclusive_group()
    kind.add_argument("--platform", dest="flavour", action="store_const", const="platform",
                      help="extensions-platform build (default)")
    kind.add_argument("--full", dest="flavour", action="store_const", const="full",
                      help="platform build + PyTorch environment creator, as a self-hosted repository")
    ap.add_argument("--platforms", default=",".join(PLATFORMS), help=f"comma-separated (default {','.join(PLATFORMS)})")
    ap.add_argument("--out", type=Path, help="output folder (default dist/<flavour>)")
    ap.add_argument("--wheels", type=Path, help="wheel cache folder (default ./wheels or $ART_AI_WHEEL_CACHE)")
    ap.add_argument("--offline", action="store_true", help="never download: use only the cached wheels")
    args = ap.parse_args(argv)
    platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
    for path in build(args.flavour or "platform", args.out, platforms, wheels_dir=args.wheels, offline=args.offline):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
