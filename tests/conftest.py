"""Shared fixtures. The real bpy module: one per process, so the extension is built with Blender's own tool,
installed into a throw-away user folder (BLENDER_USER_RESOURCES, set before bpy is imported) and enabled once."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_USER = tempfile.mkdtemp(prefix="art_ai_blender_user_")
os.environ["BLENDER_USER_RESOURCES"] = _USER  # before any `import bpy`
os.environ.setdefault("ART_AI_MODELS", os.path.join(_USER, "models_env_default"))


def blender_ext_tool() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    base = Path(spec.origin).parent
    tool = base / "5.0" / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    assert tool.exists(), f"blender_ext.py not found in the bpy wheel at {tool}"
    return tool


def build_zip(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(blender_ext_tool()), "build", "--source-dir", str(ROOT), "--output-dir",
                    str(out_dir)], check=True, capture_output=True, text=True)
    zips = sorted(out_dir.glob("art_ai-*.zip"))
    assert zips, "the build produced no zip"
    return zips[-1]


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> Path:
    return build_zip(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def blender(extension_zip):
    """The real bpy with Art AI installed from its zip and enabled (module name bl_ext.user_default.art_ai)."""
    import bpy

    result = bpy.ops.extensions.package_install_files(filepath=str(extension_zip), repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}
    assert "bl_ext.user_default.art_ai" in bpy.context.preferences.addons
    return bpy


ADDON = "bl_ext.user_default.art_ai"


def addon_module(name: str = ""):
    """A module of the installed extension, e.g. addon_module('art_ai_addon.blender.bridge')."""
    import importlib

    return importlib.import_module(f"{ADDON}.{name}" if name else ADDON)


@pytest.fixture
def demo_render(blender):
    """A fresh demo scene rendered with Cycles into Render Result."""
    demo = addon_module("art_ai_addon.blender.demo_scene")
    scene = demo.build_demo_scene(size=96, samples=4)
    assert ADDON in blender.context.preferences.addons
    demo.render_still(scene)
    return scene


def skimage_rgb(name: str, size: int = 128) -> np.ndarray:
    """A scikit-image sample picture as float32 RGB, centre-cropped to a square and resized."""
    import cv2
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=2)
    img = img[:, :, :3]
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return (img.astype(np.float32) / 255.0).astype(np.float32)
