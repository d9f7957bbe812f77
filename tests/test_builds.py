"""The two builds: the extensions-platform zip (OpenCV bundled, no installer) and the full build's repository.

Built with Blender's own tool from the bpy wheel, for linux-x64 only (fast), from the OpenCV wheel that
scripts/setup_env.sh caches in wheels/ (the tests never download). `build_platform_zip` is for other tests too
(e.g. installing the platform zip into a stock Blender).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import build_release  # noqa: E402
import fetch_wheels  # noqa: E402


def _build(flavour: str, out_dir: Path, platform: str) -> list[Path]:
    try:
        return build_release.build(flavour, Path(out_dir), [platform], offline=True)
    except SystemExit as exc:  # a missing cached wheel or a failed Blender tool run: say what to do
        pytest.fail(f"{flavour} build for {platform} failed: {exc}\n(scripts/setup_env.sh caches the OpenCV wheel "
                    f"in {build_release.wheel_cache()}; or run scripts/fetch_wheels.py --platform {platform})")


def build_platform_zip(out_dir, platform: str = "linux-x64") -> Path:
    """The extensions-platform zip for one platform (OpenCV bundled, no environment creator), built offline."""
    zips = _build("platform", Path(out_dir), platform)
    assert len(zips) == 1, zips
    return zips[0]


def build_full_repository(out_dir, platform: str = "linux-x64") -> tuple[Path, Path]:
    """(zip, index.json) of the full build's self-hosted repository for one platform."""
    paths = _build("full", Path(out_dir), platform)
    return next(p for p in paths if p.suffix == ".zip"), next(p for p in paths if p.name == "index.json")


@pytest.fixture(scope="module")
def platform_zip(tmp_path_factory) -> Path:
    return build_platform_zip(tmp_path_factory.mktemp("platform"))


@pytest.fixture(scope="module")
def full_repo(tmp_path_factory) -> tuple[Path, Path]:
    return build_full_repository(tmp_path_factory.mktemp("full"))


def _manifest(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as zf:
        return tomllib.loads(zf.read("blender_manifest.toml").decode())


def _flavour_seen_by_the_addon(zip_path: Path, tmp_path: Path) -> str:
    """What the extracted zip's own deps module says, in a fresh interpreter (build_flavour, can_create_env)."""
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tmp_path / "x", members=[n for n in zf.namelist() if n.startswith("art_ai_addon/")])
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import art_ai_addon.deps as d; "
            "print(d.build_flavour(), d.can_create_env(), 'torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(build_release.blender_ext_tool()), "validate", "--valid-tags",
                           str(build_release.valid_tags_file()), str(path)], capture_output=True, text=True)


def test_platform_zip_bundles_the_opencv_wheel_and_no_installer(platform_zip, tmp_path):
    assert platform_zip.name.endswith("-linux_x64.zip")
    wheel = fetch_wheels.cached(build_release.opencv_requirement(), build_release.wheel_cache())["linux-x64"]
    with zipfile.ZipFile(platform_zip) as zf:
        names = set(zf.namelist())
        bundled = [n for n in names if n.startswith("wheels/") and n.endswith(".whl")]
        assert bundled == [f"wheels/{wheel.name}"]  # only this platform's wheel
        assert hashlib.sha256(zf.read(bundled[0])).digest() == hashlib.sha256(wheel.read_bytes()).digest()
        assert "art_ai_addon/deps.py" in names and "art_ai_addon/blender/bridge.py" in names
        assert build_release.CREATOR not in names  # no run-time installer on the platform
        assert not any(n.startswith(("tests/", "wheels/opencv_python_headless-4.11.0.86-cp37-abi3-win")) for n in names)
    manifest = _manifest(platform_zip)
    assert manifest["platforms"] == ["linux-x64"] and manifest["wheels"] == [f"./wheels/{wheel.name}"]
    assert any("OpenCV" in c and "Apache-2.0" in c for c in manifest["copyright"])
    assert manifest["permissions"]["network"] == build_release.NETWORK["platform"]
    assert "PyTorch" not in manifest["permissions"]["network"]  # nothing installs PyTorch from this build
    assert _flavour_seen_by_the_addon(platform_zip, tmp_path) == "platform False False"


def test_manifests_validate_with_blenders_tag_list(platform_zip, tmp_path):
    ok = _validate(platform_zip)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert _validate(ROOT).returncode == 0  # the source tree's own manifest too
    # the check is real: the same tag list refuses a tag Blender does not know
    bad = tmp_path / "bad"
    bad.mkdir()
    text = (ROOT / "blender_manifest.toml").read_text().replace('"Compositing"]', '"Compositing", "Artificial"]')
    (bad / "blender_manifest.toml").write_text(text)
    (bad / "__init__.py").write_text("")
    refused = _validate(bad)
    assert refused.returncode != 0 and "Artificial" in refused.stdout + refused.stderr


def test_full_build_is_a_repository_listing_its_zip(full_repo, tmp_path):
    zip_path, index_path = full_repo
    assert index_path.parent == zip_path.parent and (index_path.parent / "index.html").is_file()
    index = json.loads(index_path.read_text())
    entries = [e for e in index["data"] if e["id"] == "art_ai"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["archive_url"] == f"./{zip_path.name}" and entry["platforms"] == ["linux-x64"]
    assert entry["archive_size"] == zip_path.stat().st_size
    assert entry["archive_hash"] == "sha256:" + hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert "PyTorch" in entry["permissions"]["network"]  # the full build says it may download PyTorch
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
    assert build_release.CREATOR in names and any(n.startswith("wheels/opencv") for n in names)
    assert _validate(zip_path).returncode == 0
    assert _flavour_seen_by_the_addon(zip_path, tmp_path) == "full True False"
