"""The add-on in the Blender an artist has: a fresh process with the real bpy module and OpenCV, PyTorch, SciPy and
scikit-image blocked, the built zip installed and enabled (tests/stock_blender.py does the Blender side).

Numpy methods run in Blender's process; the others run in the engine worker with ART_AI_TORCH_PYTHON set to this
venv's Python, and must give what the engine gives in this (full) process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

SCRIPT = ROOT / "tests" / "stock_blender.py"


def run_stock(zip_path: Path, out: Path, *extra: str, timeout: int = 300) -> dict:
    user = out / "user"
    user.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(user))
    env.pop("ART_AI_TORCH_PYTHON", None)
    p = subprocess.run([sys.executable, str(SCRIPT), str(zip_path), str(out), *extra], env=env,
                       capture_output=True, text=True, timeout=timeout)
    report_file = out / "report.json"
    assert report_file.exists(), f"no report (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    report = json.loads(report_file.read_text())
    report["_log"] = p.stdout[-4000:] + p.stderr[-4000:]
    return report


@pytest.fixture(scope="module")
def stock(extension_zip, tmp_path_factory):
    out = tmp_path_factory.mktemp("stock")
    return out, run_stock(extension_zip, out, "--worker", sys.executable)


def _step(report, name):
    st = report["steps"].get(name)
    assert st is not None, f"step {name} did not run\n{report['_log']}"
    assert st["ok"], f"{name}: {st.get('error')}\n{st.get('traceback', '')}"
    return st


def test_enabling_changes_no_sys_path_and_imports_nothing_optional(stock):
    _, r = stock
    assert r["install"] == ["FINISHED"] and r["enabled"], r["_log"]
    assert r["sys_path_unchanged"], f"enabling added {r['sys_path_added']} to sys.path"
    assert r["blocked_loaded"] == []


def test_every_panel_and_the_preferences_draw(stock):
    _, r = stock
    st = _step(r, "draw_panels")
    assert st["problems"] == [], st["problems"]
    drawn = dict(st["drawn"])
    for name in ("ARTAI_PT_main", "ARTAI_PT_stylize", "ARTAI_PT_texture", "ARTAI_PT_repair", "ARTAI_PT_render",
                 "ArtAIPreferences"):
        assert drawn.get(name, 0) > 0, f"{name} drew nothing"
    assert st["heavy_after_draw"] == []


def test_colour_transfer_runs_in_blenders_process(stock):
    out, r = stock
    st = _step(r, "color_byte")
    assert st["result"] == ["FINISHED"] and st["made"], st["error"]
    result = np.load(out / "color_byte.npy")
    content = np.load(out / "color_byte_in.npy")
    style = np.load(out / "color_byte_style.npy")
    # the palette moved towards the style's: mean colour distance to the style shrinks
    before = np.abs(content[..., :3].mean((0, 1)) - style[..., :3].mean((0, 1))).sum()
    after = np.abs(result[..., :3].mean((0, 1)) - style[..., :3].mean((0, 1))).sum()
    assert after < 0.5 * before
    render = _step(r, "color_render")
    assert render["result"] == ["FINISHED"] and render["size"] == [64, 64] and render["std"] > 0.02, render


def test_style_layers_on_f12_in_blenders_own_process(stock):
    out, r = stock
    st = _step(r, "layers_f12")
    assert st["result"] == ["FINISHED"] and st["made"], st
    assert st["heavy"] == []  # no OpenCV, no PyTorch in Blender's process
    # the sphere (about a tenth of the frame) changed; the floor, the cube and the sky are exactly as rendered
    assert 0.03 < st["changed"] < 0.3 and st["unchanged"] > 0.7, st


def test_a_torch_method_without_pytorch_gives_one_line_and_cancels(stock):
    _, r = stock
    st = _step(r, "torch_refused")
    assert st["result"] == ["CANCELLED"] and not st["made"]
    lines = [ln for ln in st["error"].strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "PyTorch" in lines[0] and "PyTorch Python" in lines[0], st["error"]
    assert "Traceback" not in st["error"]


def test_worker_methods_match_the_engine_in_this_process(stock):
    import art_ai_addon as art
    from art_ai_addon import tasks

    out, r = stock
    st = _step(r, "worker_methods")
    for label, got in st["methods"].items():
        assert got["result"] == ["FINISHED"] and got["made"], (label, got["error"])
    content, style, mask = (np.load(out / f"{n}.npy") for n in ("content", "style", "mask"))
    models = out / "user" / "extensions" / ".user" / "user_default" / "art_ai" / "models"
    opts = {"models_dir": str(models) if models.is_dir() else None}

    def q(x):  # the results live in byte images in Blender
        return np.round(np.clip(x, 0, 1) * 255) / 255

    gatys = art.stylize(content, style, method="gatys", steps=3, seed=0, memory_mb=4096, **opts)
    assert np.abs(np.load(out / "worker_gatys.npy") - q(gatys)).max() <= 1.5 / 255
    patch = art.synthesize_texture(content, size=(80, 96), method="patch", seed=3, **opts)
    got = np.load(out / "worker_patch.npy")
    assert got.shape == (80, 96, 4) and np.abs(got - q(patch)).max() <= 1.5 / 255
    telea, _ = tasks.run("repair", dict(image=content, mask=mask, method="telea", seed=0, **opts))
    assert np.abs(np.load(out / "worker_telea.npy") - q(telea)).max() <= 1.5 / 255
    # and the fill did something where the mask is white
    hole = mask[..., 0] > 0.5
    assert np.abs(telea[hole, :3] - content[hole, :3]).mean() > 0.01


def test_a_killed_worker_is_one_clear_error_and_no_result(stock):
    _, r = stock
    st = _step(r, "worker_killed")
    assert st["result"] == ["CANCELLED"] and not st["made"] and st["new_images"] == []
    lines = [ln for ln in st["error"].strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "engine worker" in lines[0] and "killed" in lines[0], st["error"]


def test_unregister_stops_the_worker_and_leaves_nothing(stock):
    _, r = stock
    st = _step(r, "unregister")
    assert st["worker_exit"] is not None, "the worker still runs after the add-on was disabled"
    assert st["classes_left"] == [] and st["sys_path_unchanged"]


def test_the_linux_platform_zip_runs_an_opencv_method_in_blenders_process(tmp_path):
    """The extensions-platform build bundles OpenCV's wheel: an OpenCV method runs in Blender's own process, with
    cv2 loaded from the wheel Blender installed for the extension (this venv's OpenCV is blocked)."""
    from test_builds import build_platform_zip

    zip_path = build_platform_zip(tmp_path / "dist", platform="linux-x64")
    r = run_stock(zip_path, tmp_path / "out", "--bundled-cv2", "--steps", "opencv_inprocess,torch_refused")
    assert r["enabled"], r["_log"]
    st = _step(r, "opencv_inprocess")
    assert st["result"] == ["FINISHED"] and st["made"], st["error"]
    assert st["cv2_file"] and str(tmp_path / "out" / "user") in st["cv2_file"], st["cv2_file"]
    assert not st["torch_loaded"]
    got, content, mask = (np.load(tmp_path / "out" / f"{n}.npy") for n in ("cv_telea", "cv_in", "cv_mask"))
    hole = mask[..., 0] > 0.5
    assert np.array_equal(got[~hole], content[~hole])  # untouched outside the mask
    # the fill continues its surroundings: closer to the rows just above and below than the damage was
    ref = 0.5 * (content[29, 4:60, :3] + content[33, 4:60, :3])
    assert np.abs(got[31, 4:60, :3] - ref).mean() < np.abs(1.0 - ref).mean() * 0.5
    refused = _step(r, "torch_refused")
    assert refused["result"] == ["CANCELLED"] and "PyTorch" in refused["error"]
