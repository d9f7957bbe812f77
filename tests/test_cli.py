"""The CLI as a pipeline engineer uses it: real files, exit codes, one-line errors, atomic outputs."""

import os
import subprocess
import sys

import numpy as np
import pytest

import art_ai_addon as art
from conftest import ROOT, skimage_rgb

COMMANDS = ["stylize", "texture", "seamless", "pbr", "detect", "inpaint", "models", "render", "batch"]


def run(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "art_ai_addon", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd or ROOT, timeout=300)


def assert_one_line_error(proc, code, needle):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("art_ai: error") or "Traceback" in ln]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    content = skimage_rgb("astronaut", 96)
    alpha = np.tile(np.linspace(0, 1, 96, dtype=np.float32), (96, 1))[:, :, None]
    art.write_image(d / "content.png", np.concatenate([content, alpha], axis=2), bits=16)
    art.write_image(d / "style.jpg", skimage_rgb("coffee", 80))
    (d / "frames").mkdir()
    for i in range(3):
        art.write_image(d / "frames" / f"{i:04d}.png", np.roll(content, i * 4, axis=1))
    (d / "notimage.png").write_text("hello")
    (d / "empty.png").write_bytes(b"")
    return d


def test_help_for_every_command():
    top = run("--help")
    assert top.returncode == 0
    for cmd in COMMANDS:
        assert cmd in top.stdout
        p = run(cmd, "--help")
        assert p.returncode == 0 and "usage:" in p.stdout, (cmd, p.stderr)
    for action in ("list", "import", "verify", "download", "remove"):
        assert run("models", action, "--help").returncode == 0


def test_stylize_writes_output_keeps_alpha_and_prints_path(files, tmp_path):
    out = tmp_path / "out.png"
    p = run("stylize", files / "content.png", "--style", files / "style.jpg", "-o", out, "--method", "color")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(out)
    assert "%" in p.stderr  # progress on stderr
    src, res = art.read_image(files / "content.png"), art.read_image(out)
    assert res.shape == src.shape
    assert np.abs(res[:, :, 3] - src[:, :, 3]).max() <= 1 / 255
    assert np.abs(res[:, :, :3] - src[:, :, :3]).mean() > 0.02
    assert [f.name for f in tmp_path.iterdir()] == ["out.png"]  # no temporary files left behind


def test_stylize_folder_into_folder(files, tmp_path):
    p = run("stylize", files / "frames", "--style", files / "style.jpg", "-o", tmp_path, "--method", "color")
    assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["0000.png", "0001.png", "0002.png"]
    assert len(p.stdout.split()) == 3


def test_chunk_takes_a_slice(files, tmp_path):
    p = run("stylize", files / "frames", "--style", files / "style.jpg", "-o", tmp_path, "--method", "color",
            "--chunk", "2/3")
    assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["0001.png"]


@pytest.mark.parametrize("bad, needle", [("missing.png", "does not exist"), ("frames", "folder"),
                                         ("notimage.png", "cannot read"), ("empty.png", "empty")])
def test_bad_style_inputs_are_one_line_usage_errors(files, tmp_path, bad, needle):
    p = run("stylize", files / "content.png", "--style", files / bad, "-o", tmp_path / "o.png", "--method", "color")
    assert_one_line_error(p, 2, needle)
    assert not (tmp_path / "o.png").exists()


def test_missing_content_and_bad_options(files, tmp_path):
    assert_one_line_error(run("stylize", files / "nope.png", "--style", files / "style.jpg", "-o", tmp_path / "o.png"),
                          2, "does not exist")
    p = run("stylize", files / "content.png", "--style", files / "style.jpg", "-o", tmp_path / "o.png",
            "--strength", "3")
    assert p.returncode == 2 and "outside 0..1" in p.stderr
    assert run("texture", files / "content.png", "-o", tmp_path / "t.png", "--size", "axb").returncode == 2
    assert run("inpaint", files / "content.png", "-o", tmp_path / "t.png").returncode == 2  # --mask or --detect


def test_unwritable_output_is_refused_before_the_run(files, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = run("stylize", files / "content.png", "--style", files / "style.jpg", "-o", blocker / "o.png",
            "--method", "color")
    assert_one_line_error(p, 2, "cannot write")  # a usage mistake found by the checks before any work
    p = run("stylize", files / "content.png", "--style", files / "style.jpg", "-o", tmp_path / "o.txt",
            "--method", "color")
    assert_one_line_error(p, 2, "extension")


@pytest.mark.parametrize("ext, bits, tol", [(".png", 8, 1 / 255), (".png", 16, 1 / 65535 + 1e-6),
                                            (".tif", 8, 1 / 255), (".tiff", 16, 1e-4), (".exr", None, 1e-3),
                                            (".jpg", 8, 0.08)])
def test_image_formats_round_trip(tmp_path, ext, bits, tol):
    rng = np.random.default_rng(1)
    img = np.clip(skimage_rgb("chelsea", 48) + rng.normal(0, 0.01, (48, 48, 3)), 0, 1).astype(np.float32)
    if ext != ".jpg":
        img = np.dstack([img, rng.random((48, 48), dtype=np.float32)])
    path = art.write_image(tmp_path / f"x{ext}", img, bits=bits)
    back = art.read_image(path)
    assert back.shape == img.shape
    err = np.abs(back - img)
    assert (err.mean() if ext == ".jpg" else err.max()) <= tol


def test_exr_holds_linear_values(tmp_path):
    import cv2

    img = np.full((8, 8, 3), 0.5, np.float32)
    art.write_image(tmp_path / "a.exr", img)
    raw = cv2.imread(str(tmp_path / "a.exr"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.float32 and abs(float(raw.mean()) - 0.214) < 0.002  # sRGB 0.5 is linear 0.214
