"""Hostile and careless inputs: every command and API entry point answers with one line a person can act on.

TABLE lists the inputs (CLI argv run in a subprocess, as a user runs it) and a phrase the one line must hold.
Every case must: exit 2, print exactly one stderr line starting `art_ai: error:` (besides a 0% progress
line), print nothing on stdout, never say "internal error" or show a traceback, leave no output and no
temporary file behind, and leave the inputs byte-for-byte as they were. Decompression bombs run under an
address-space cap, so a regression fails the test instead of taking the machine down. Add a row for every
new command and method.
"""

from __future__ import annotations

import os
import re
import resource
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

import art_ai_addon as art
from art_ai_addon import imageio
from art_ai_addon.errors import ArtAIError, Cancelled, InputError

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CAP = 3 * 1024 ** 3  # address space for the bomb cases


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, w: int, h: int, *, full: bool = True) -> Path:
    """A black grey PNG that claims w x h; `full` compresses every row (a real bomb), else only one (a lie)."""
    co = zlib.compressobj(9)
    row = b"\0" * (1 + w)
    body = b"".join(co.compress(row) for _ in range(h if full else 1)) + co.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))
    return path


def _write(path: Path, arr) -> Path:
    imageio.write_image(path, arr)
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    _write(d / "a.png", rng.random((64, 64, 3)).astype(np.float32))
    _write(d / "s.png", rng.random((64, 64, 3)).astype(np.float32))
    _write(d / "m.png", (rng.random((64, 64)) > 0.9).astype(np.float32))
    _write(d / "tiny.png", rng.random((1, 1, 3)).astype(np.float32))
    _write(d / "thin.png", rng.random((1, 300, 3)).astype(np.float32))
    data = (d / "a.png").read_bytes()
    (d / "trunc.png").write_bytes(data[: len(data) // 2])
    crc = bytearray(data)
    crc[100] ^= 0xFF
    (d / "crc.png").write_bytes(bytes(crc))
    (d / "text.png").write_text("not a picture\n")
    (d / "empty.png").write_bytes(b"")
    (d / "afile").write_text("x")
    (d / "folder").mkdir()
    os.mkfifo(d / "fifo.png")
    (d / "link.png").symlink_to("a.png")
    for sub in ("d1", "d2"):  # two pictures with one file name
        _write(d / sub / "f.png", rng.random((16, 16, 3)).astype(np.float32))
    (d / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")  # nested 5000 deep
    (d / "seamless.toml").write_text('[[step]]\ntask = "seamless"\ninput = "a.png"\noutput = "out/a.png"\n')
    bomb_png(d / "bomb.png", 20000, 20000)  # 0.4 MB on disk, 400 megapixels decoded
    bomb_png(d / "claim.png", 100000, 100000, full=False)  # a header that lies
    bomb_png(d / "big.png", 8000, 8000)  # 64 megapixels: under the pixel limit, over what 3 GB can work on
    return d


# (id, argv, phrase in the one line, bomb: run under the memory cap)
TABLE = [
    # decompression bombs and lying headers, for every reader of every command
    ("bomb-content", ["stylize", "bomb.png", "--style", "s.png", "-o", "o.png", "--method", "color"],
     "20000x20000 pixels", True),
    ("bomb-style", ["stylize", "a.png", "--style", "bomb.png", "-o", "o.png", "--method", "color"],
     "raise the limit", True),
    ("bomb-mask", ["stylize", "a.png", "--style", "s.png", "--mask", "bomb.png", "-o", "o.png", "--method",
                   "color"], "mask: bomb.png is 20000x20000", True),
    ("claim-100k", ["stylize", "claim.png", "--style", "s.png", "-o", "o.png", "--method", "color"],
     "100000x100000 pixels", True),
    ("bomb-texture", ["texture", "bomb.png", "-o", "o.png"], "exemplar: bomb.png", True),
    ("bomb-seamless", ["seamless", "claim.png", "-o", "o.png"], "megapixels", True),
    ("bomb-pbr", ["pbr", "bomb.png", "-o", "out"], "megapixels", True),
    ("bomb-detect-ref", ["detect", "a.png", "--reference", "bomb.png", "-o", "o.png"], "reference: bomb.png", True),
    ("bomb-inpaint-mask", ["inpaint", "a.png", "--mask", "claim.png", "-o", "o.png"], "mask: claim.png", True),
    ("bomb-train", ["train-style", "bomb.png", "--style", "s.png", "--name", "n", "--steps", "1"],
     "training image: bomb.png", True),
    # under the pixel limit, but more than the memory this process has for the work (issue 27, cause 3)
    ("memory-seamless", ["seamless", "big.png", "-o", "o.png"], "memory", True),
    ("memory-pbr", ["pbr", "big.png", "-o", "out"], "memory", True),
    ("memory-inpaint", ["inpaint", "big.png", "--detect", "-o", "o.png"], "memory", True),
    # broken and odd files
    ("truncated", ["seamless", "trunc.png", "-o", "o.png"], "cannot read", False),
    ("crc-error", ["stylize", "crc.png", "--style", "s.png", "-o", "o.png", "--method", "color"], "cannot read",
     False),
    ("text-file", ["pbr", "text.png", "-o", "out"], "cannot read", False),
    ("empty-file", ["detect", "empty.png", "-o", "o.png"], "empty", False),
    ("fifo", ["stylize", "fifo.png", "--style", "s.png", "-o", "o.png", "--method", "color"], "not a regular file",
     False),
    ("fifo-style", ["stylize", "a.png", "--style", "fifo.png", "-o", "o.png", "--method", "color"],
     "not a regular file", False),
    ("folder-as-mask", ["inpaint", "a.png", "--mask", "folder", "-o", "o.png"], "is a folder", False),
    ("missing", ["seamless", "nothere.png", "-o", "o.png"], "does not exist", False),
    # outputs checked before any work
    ("out-not-image", ["stylize", "a.png", "--style", "s.png", "-o", "x.txt", "--method", "gatys", "--steps", "2"],
     "no image extension", False),
    ("out-is-input", ["stylize", "a.png", "--style", "s.png", "-o", "a.png", "--method", "color"], "--overwrite",
     False),
    ("out-is-input-dotted", ["seamless", "a.png", "-o", "./a.png"], "--overwrite", False),
    ("out-is-input-link", ["seamless", "a.png", "-o", "link.png"], "is the input", False),
    ("out-is-style", ["stylize", "a.png", "--style", "s.png", "-o", "s.png", "--method", "color"], "is the input",
     False),
    ("out-is-mask", ["inpaint", "a.png", "--mask", "m.png", "-o", "m.png"], "is the input", False),
    ("same-name-inputs", ["stylize", "d1/f.png", "d2/f.png", "--style", "s.png", "-o", "out", "--method",
                          "color"], "d1/f.png and d2/f.png would both be written as out/f.png", False),
    ("same-name-folders", ["stylize", "d1", "d2", "-o", "out", "--style", "s.png", "--method", "color",
                           "--overwrite"], "would both be written as out/f.png", False),
    ("same-input-twice", ["stylize", "a.png", "./a.png", "-o", "out", "--style", "s.png", "--method", "color"],
     "would both be written as out/a.png", False),
    ("out-under-file", ["texture", "a.png", "-o", "afile/t.png"], "is a file, not a folder", False),
    ("out-is-folder", ["detect", "a.png", "-o", "folder"], "is a folder", False),
    ("pbr-into-file", ["texture", "a.png", "-o", "t.png", "--pbr", "afile"], "--pbr: afile is a file", False),
    ("pbr-out-file", ["pbr", "a.png", "-o", "afile"], "is a file, expected a folder", False),
    ("models-dir-file", ["texture", "a.png", "-o", "t.png", "--method", "gan", "--models-dir", "afile"],
     "--models-dir: afile is a file", False),
    ("train-name-dots", ["train-style", "a.png", "--style", "s.png", "--name", "../x", "--steps", "1"],
     "model name '../x'", False),
    ("train-size-0", ["train-style", "a.png", "--style", "s.png", "--name", "n", "--size", "0"], "--size: 0", False),
    ("train-name-registry", ["train-style", "a.png", "--style", "s.png", "--name", "vgg19", "--steps", "1"],
     "--name: model name 'vgg19' is the registry model vgg19", False),
    ("train-name-registry-file", ["train-style", "a.png", "--style", "s.png", "--name", "Candy", "--steps", "1"],
     "registry model candy", False),
    # bad values
    ("gatys-steps-neg", ["stylize", "a.png", "--style", "s.png", "-o", "o.png", "--method", "gatys", "--steps",
                         "-1"], "--steps: -1", False),
    ("neural-steps-neg", ["texture", "a.png", "-o", "o.png", "--method", "neural", "--steps", "-5"], "--steps: -5",
     False),
    ("dip-steps-0", ["inpaint", "a.png", "--mask", "m.png", "-o", "o.png", "--method", "dip", "--steps", "0"],
     "give 1 or more", False),
    ("pbr-strength-nan", ["pbr", "a.png", "-o", "out", "--strength", "nan"], "finite", False),
    ("style-weight-nan", ["stylize", "a.png", "--style", "s.png", "-o", "o.png", "--style-weight", "nan"],
     "finite", False),
    # ordinary mistakes that were internal errors (issue 27, cause 6)
    ("seed-22-digits", ["stylize", "a.png", "--style", "s.png", "-o", "o.png", "--method", "gatys", "--steps", "1",
                        "--seed", "1234567890123456789012"], "--seed: 1234567890123456789012 is out of range", False),
    ("train-seed-22-digits", ["train-style", "a.png", "--style", "s.png", "--name", "n", "--steps", "1", "--seed",
                              "1234567890123456789012"], "--seed", False),
    ("texture-seed-22-digits", ["texture", "a.png", "-o", "o.png", "--seed", "1234567890123456789012"], "--seed",
     False),
    ("name-too-long", ["seamless", "a.png", "-o", "x" * 260 + ".png"], "too long", False),
    ("folder-name-too-long", ["pbr", "a.png", "-o", "d" * 300], "too long", False),
    ("toml-nested-deep", ["batch", "deep.toml"], "nested too deep", False),
    ("ray-bad-address", ["batch", "seamless.toml", "--ray", "bad address::"], "--ray", False),
    ("reference-with-mask", ["inpaint", "a.png", "--mask", "m.png", "--reference", "s.png", "-o", "o.png"],
     "--reference: only used with --detect", False),
    # images a method cannot work on
    ("gatys-1x1-content", ["stylize", "tiny.png", "--style", "s.png", "-o", "o.png", "--method", "gatys", "--steps",
                           "2"], "too small for gatys", False),
    ("gatys-thin-style", ["stylize", "a.png", "--style", "thin.png", "-o", "o.png", "--method", "gatys", "--steps",
                          "2"], "style: thin.png is 300x1 pixels, too small for gatys", False),
]


def _cap():
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in folder.iterdir() if p.name != "fifo.png"}


@pytest.mark.parametrize("case", TABLE, ids=[c[0] for c in TABLE])
def test_cli_hostile_input_gives_one_line(ws, case):
    _id, argv, phrase, bomb = case
    before = _snapshot(ws)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("ART_AI_DEBUG", None)
    r = subprocess.run([PY, "-m", "art_ai_addon", *argv], cwd=ws, env=env, capture_output=True, text=True,
                       timeout=120, preexec_fn=_cap if bomb else None)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    started = [ln for ln in lines if re.match(r"art_ai: +\d+% ", ln)]
    assert all(re.match(r"art_ai: +0% ", ln) for ln in started), r.stderr  # refused before any work was done
    lines = [ln for ln in lines if ln not in started]
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("art_ai: error: "), r.stderr
    assert phrase in lines[0], (phrase, lines[0])
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""
    after = _snapshot(ws)
    assert after == before, sorted(set(after) ^ set(before))  # nothing written, nothing replaced
    assert not (ws / "out").exists()


# ---------------------------------------------------------------------------------------------
# The same promise through the Python API

API = [
    ("stylize-strength-nan", lambda c, p: art.stylize(c, c, method="color", strength=float("nan")), "finite"),
    ("stylize-strength-str", lambda c, p: art.stylize(c, c, method="color", strength="x"), "expected a number"),
    ("stylize-strength-big", lambda c, p: art.stylize(c, c, method="color", strength=2.0), "out of range; give 0 to 1"),
    ("stylize-path-content", lambda c, p: art.stylize(str(p / "a.png"), c, method="color"), "read_image"),
    ("read-none", lambda c, p: art.read_image(None), "no file given"),
    ("read-int", lambda c, p: art.read_image(3), "expected a file path"),
    ("read-fifo", lambda c, p: art.read_image(p / "fifo.png"), "not a regular file"),
    ("read-bomb", lambda c, p: art.read_image(p / "bomb.png"), "20000x20000"),
    ("read-limit", lambda c, p: art.read_image(p / "a.png", max_pixels=1000), "more than the limit"),
    ("check-bomb", lambda c, p: imageio.check_image_file(p / "claim.png", "style image"), "style image: claim.png"),
    ("gatys-steps-0", lambda c, p: art.stylize(c, c, method="gatys", steps=0, device="cpu"), "steps: 0"),
    ("gatys-1x1", lambda c, p: art.stylize(c[:1, :1], c, method="gatys", steps=2, device="cpu"), "too small"),
    ("gatys-1xN-style", lambda c, p: art.stylize(c, np.ones((1, 500, 3), np.float32), method="gatys", steps=2,
                                                 device="cpu"), "too small for gatys"),
    ("neural-steps-0", lambda c, p: art.synthesize_texture(c, (32, 32), method="neural", steps=0), "steps: 0"),
    ("gan-steps-neg", lambda c, p: art.synthesize_texture(c, (32, 32), method="gan", steps=-3,
                                                          models_dir=str(p / "models")), "steps: -3"),
    ("train-size-0", lambda c, p: art.train_fast_style(c, [c], steps=1, name="n", size=0), "size"),
    ("train-name", lambda c, p: art.train_fast_style(c, [c], steps=1, name="a/b"), "model name"),
    ("texture-seed-str", lambda c, p: art.synthesize_texture(c, (32, 32), seed="x"), "seed: expected a whole"),
    ("seamless-seed-str", lambda c, p: art.make_seamless(c, seed="x"), "seed: expected a whole"),
    ("pbr-strength-str", lambda c, p: art.pbr_maps(c, strength="x"), "strength: expected a number"),
    ("write-none", lambda c, p: art.write_image(None, c), "output: no file given"),
]


@pytest.mark.parametrize("case", API, ids=[c[0] for c in API])
def test_api_hostile_input_raises_input_error(ws, case):
    _id, call, phrase = case
    c = np.random.default_rng(1).random((48, 48, 3)).astype(np.float32)
    with pytest.raises(InputError) as info:
        call(c, ws)
    assert phrase in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_nan_weights_are_an_error_not_a_black_image(tmp_path):
    import torch

    from art_ai_addon.stylize.fast import transformer_net

    net = transformer_net()
    sd = net.state_dict()
    sd["deconv3.conv2d.weight"].fill_(float("nan"))
    torch.save(sd, tmp_path / "broken.pth")
    c = np.random.default_rng(2).random((32, 32, 3)).astype(np.float32)
    with pytest.raises(ArtAIError, match=r"stylize \(fast\) produced invalid values"):
        art.stylize(c, None, method="fast", model=str(tmp_path / "broken.pth"), device="cpu")


def test_pbr_on_one_pixel_thin_images_gives_flat_finite_maps():
    rng = np.random.default_rng(3)
    for shape in [(1, 1, 3), (1, 300, 3), (300, 1, 3)]:
        maps = art.pbr_maps(rng.random(shape).astype(np.float32))
        for key, m in maps.items():
            assert m.shape[:2] == shape[:2] and np.isfinite(m).all(), key
        n = maps["normal"] * 2 - 1
        if shape[0] == 1:  # no slope can exist across a one-pixel axis
            assert np.abs(n[..., 1]).max() < 1e-6


# ---------------------------------------------------------------------------------------------
# Headers, orientation, file modes, progress


def test_header_reader_agrees_with_the_decoder(tmp_path):
    import cv2

    rng = np.random.default_rng(4)
    cases = [(".png", (37, 53, 3), np.uint8), (".png", (37, 53, 4), np.uint16), (".png", (37, 53), np.uint8),
             (".jpg", (37, 53, 3), np.uint8), (".jpg", (37, 53), np.uint8), (".tif", (37, 53, 3), np.uint8),
             (".tif", (37, 53, 4), np.uint16), (".exr", (37, 53, 3), np.float32), (".exr", (37, 53), np.float32),
             (".bmp", (37, 53, 3), np.uint8), (".webp", (37, 53, 3), np.uint8), (".ppm", (37, 53, 3), np.uint8),
             (".pfm", (37, 53, 3), np.float32), (".hdr", (37, 53, 3), np.float32), (".jp2", (37, 53, 3), np.uint8)]
    for ext, shape, dtype in cases:
        scale = {np.uint8: 255, np.uint16: 65535}.get(dtype, 1)
        p = tmp_path / f"x{ext}"
        assert cv2.imwrite(str(p), (rng.random(shape) * scale).astype(dtype)), ext
        h = imageio.read_header(p)
        decoded = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert h is not None and (h.height, h.width) == decoded.shape[:2], (ext, h, decoded.shape)
        channels = 1 if decoded.ndim == 2 else decoded.shape[2]
        assert h.channels >= channels, (ext, h, decoded.shape)


def _marked(h=40, w=64):
    a = np.zeros((h, w, 3), np.uint8)
    a[:12, :20] = (255, 0, 0)  # red: top left
    a[28:, 44:] = (0, 0, 255)  # blue: bottom right
    a[:, 30:34, 1] = 200
    return a


def _psnr(a, b):
    return 10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12))


UPRIGHT = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, -1)[::-1],
           8: lambda a: np.rot90(a, 1)}  # what a viewer shows for each EXIF orientation (TIFF/EXIF spec)


def _best_orientation(got, a):
    """The orientation whose upright picture `got` matches, if it matches it well (>25 dB) and clearly
    better (by 10 dB) than every other one."""
    scores = {o: _psnr(got[:, :, :3], f(a).astype(np.float32) / 255) for o, f in UPRIGHT.items()
              if f(a).shape == got.shape[:2] + (3,)}
    ranked = sorted(scores, key=scores.get, reverse=True)
    best = ranked[0]
    assert scores[best] > 25 and scores[best] > scores[ranked[1]] + 10, scores
    return best


@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_exif_orientation_is_applied(tmp_path, ext):
    from PIL import Image

    a = _marked()
    for o in UPRIGHT:
        im = Image.fromarray(a)
        exif = im.getexif()
        exif[274] = o
        p = tmp_path / f"o{o}.{ext}"
        im.save(p, exif=exif.tobytes(), **({"quality": 95} if ext == "jpg" else {"lossless": True}
                                           if ext == "webp" else {}))
        assert _best_orientation(art.read_image(p), a) == o


def test_jpeg_orientation_6_from_raw_app1_bytes(tmp_path):
    """A camera-style JPEG written by hand: EXIF APP1 with orientation 6 (rotate 90 degrees clockwise)."""
    import cv2

    a = _marked()
    ok, enc = cv2.imencode(".jpg", a[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    tiff = b"MM\0*" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(">HHIHH", 274, 3, 1, 6, 0) + b"\0" * 4
    app1 = b"Exif\0\0" + tiff
    data = enc.tobytes()
    (tmp_path / "cam.jpg").write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:])
    got = art.read_image(tmp_path / "cam.jpg")
    assert got.shape == (64, 40, 3) and _best_orientation(got, a) == 6
    assert got[:10, -10:, 0].mean() > 0.8  # red ends up top right, as a viewer shows it


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_mode_open_would_give(tmp_path, umask):
    old = os.umask(umask)
    try:
        p = art.write_image(tmp_path / "o.png", np.zeros((8, 8, 3), np.float32))
        fd = os.open(tmp_path / "plain", os.O_CREAT | os.O_WRONLY, 0o666)
        os.close(fd)
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == 0o666 & ~umask
    os.chmod(p, 0o640)  # replacing a file keeps the mode the user gave it
    art.write_image(p, np.ones((8, 8, 3), np.float32))
    assert p.stat().st_mode & 0o777 == 0o640
    assert sorted(q.name for q in tmp_path.iterdir()) == ["o.png", "plain"]  # no temporary left


def test_library_lines_are_kept_out_of_stderr_but_noted(ws, capfd):
    with pytest.raises(InputError) as info:
        art.read_image(ws / "crc.png")
    out, err = capfd.readouterr()
    assert err == "" and out == ""
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert "CRC" in notes or "libpng" in notes or "PNG" in notes, notes


def test_quilting_reports_at_most_every_percent_and_still_cancels():
    from art_ai_addon.texture.quilt import quilt
    from art_ai_addon.core import reporter

    ex = np.random.default_rng(5).random((24, 24, 3)).astype(np.float32)
    calls = []
    quilt(ex, (300, 300), block=8, overlap=2, wrap=True, seed=0, rep=reporter(lambda f, m: calls.append(f)))
    fractions = list(calls)
    blocks = (300 // 6) ** 2
    assert blocks >= 2500 and len(fractions) <= 102  # was one line every 8 blocks: ~310 here
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    stop = threading.Event()

    def progress(f, m):
        if f > 0.2:
            stop.set()

    with pytest.raises(Cancelled):
        quilt(ex, (300, 300), block=8, overlap=2, wrap=True, seed=0, rep=reporter(progress, stop))


def test_max_pixels_setting_and_default(ws):
    assert imageio.get_max_pixels() == imageio.default_max_pixels() <= 16384 * 16384
    assert art.read_image(ws / "a.png").shape == (64, 64, 3)
    try:
        imageio.set_max_pixels(4000)  # a 64x64 image is 4096 pixels
        with pytest.raises(InputError, match="64x64 pixels"):
            art.read_image(ws / "a.png")
    finally:
        imageio.set_max_pixels(None)
    assert art.read_image(ws / "a.png").shape == (64, 64, 3)
    with pytest.raises(InputError):
        imageio.set_max_pixels(-1)


# ---------------------------------------------------------------------------------------------
# Batch jobs: no step replaces a file that it or an earlier step reads (issue 27, cause 1)

_SEAMLESS = '[[step]]\ntask = "seamless"\ninput = "{i}"\noutput = "{o}"\n'
BATCH_OVERWRITES = [
    ("own-style", '[[step]]\ntask = "stylize"\ninput = "a.png"\nstyle = "s.png"\nmethod = "color"\n'
                  'output = "s.png"\n', "style"),
    ("own-mask", '[[step]]\ntask = "inpaint"\ninput = "a.png"\nmask = "m.png"\nmethod = "telea"\n'
                 'output = "m.png"\n', "mask"),
    ("own-reference", '[[step]]\ntask = "detect"\ninput = "a.png"\nreference = "s.png"\noutput = "s.png"\n',
     "reference"),
    ("input-dotdot", _SEAMLESS.format(i="sub/../a.png", o="a.png"), "input"),
    ("input-dotdot-out", _SEAMLESS.format(i="a.png", o="sub/../a.png"), "input"),
    ("input-symlink", _SEAMLESS.format(i="a.png", o="link.png"), "input"),
    ("input-hardlink", _SEAMLESS.format(i="a.png", o="hard.png"), "input"),
    ("pbr-map-is-input", '[[step]]\ntask = "pbr"\ninput = "height.png"\noutput = "."\n', "input"),
    ("earlier-input", _SEAMLESS.format(i="a.png", o="b.png") + _SEAMLESS.format(i="b.png", o="a.png"),
     "step 1"),
    ("earlier-style", '[[step]]\ntask = "stylize"\ninput = "a.png"\nstyle = "s.png"\nmethod = "color"\n'
                      'output = "b.png"\n' + _SEAMLESS.format(i="a.png", o="s.png"), "style"),
]


def _batch_ws(d: Path) -> Path:
    rng = np.random.default_rng(6)
    for name in ("a.png", "s.png", "height.png"):
        _write(d / name, rng.random((32, 32, 3)).astype(np.float32))
    imageio.write_image(d / "m.png", (rng.random((32, 32)) > 0.9).astype(np.float32), data=True)
    (d / "sub").mkdir()
    (d / "link.png").symlink_to("a.png")
    os.link(d / "a.png", d / "hard.png")
    return d


def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", BATCH_OVERWRITES, ids=[c[0] for c in BATCH_OVERWRITES])
def test_batch_refuses_an_output_that_is_a_source(tmp_path, capsys, case):
    from art_ai_addon.cli import main

    _id, body, phrase = case
    ws = _batch_ws(tmp_path)
    (ws / "job.toml").write_text(body)
    before = _tree(ws)
    code = main(["-q", "batch", str(ws / "job.toml")])
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("art_ai: error: job.toml: step"), err
    assert "output" in lines[0] and phrase in lines[0], (phrase, lines[0])
    assert out == "" and _tree(ws) == before  # nothing written, nothing replaced


def test_batch_chain_of_outputs_is_still_allowed(tmp_path, capsys):
    from art_ai_addon.cli import main

    ws = _batch_ws(tmp_path)
    (ws / "job.toml").write_text(_SEAMLESS.format(i="a.png", o="out/b.png")
                                 + _SEAMLESS.format(i="out/b.png", o="out/c.png"))
    assert main(["-q", "batch", str(ws / "job.toml")]) == 0, capsys.readouterr().err
    assert (ws / "out" / "c.png").is_file()


def test_batch_planning_is_linear_and_says_so(tmp_path, capsys):
    """Cause 5: 4,000 chained steps took 33 s to plan (every lookup scanned the outputs planned so far)."""
    import time

    from art_ai_addon.batch.plan import prepare

    _write(tmp_path / "a.png", np.zeros((8, 8, 3), np.float32))
    n = 3000
    job = tmp_path / "job.toml"
    job.write_text("".join(_SEAMLESS.format(i="a.png" if k == 0 else f"o/{k - 1}.png", o=f"o/{k}.png")
                           for k in range(n)))
    t = time.monotonic()
    steps, mine = prepare(job, quiet=False)
    took = time.monotonic() - t
    assert len(steps) == n and sum(len(v) for v in mine.values()) == n
    assert took < 3.0, took
    assert f"planning {n} steps" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The model store trusts nothing it has not checked, and deletes only models (issue 27, cause 7)


def _store_file(root: Path, name: str, data: bytes) -> Path:
    """A weights file in the store with our sidecar recording its SHA-256."""
    import hashlib
    import json

    root.mkdir(parents=True, exist_ok=True)
    p = root / f"{name}.pth"
    p.write_bytes(data)
    (root / f"{name}.json").write_text(json.dumps({"name": name, "file": p.name, "architecture": "transformer_net",
                                                   "sha256": hashlib.sha256(data).hexdigest()}))
    return p


def test_store_a_registry_file_in_the_working_folder_is_not_trusted(tmp_path, monkeypatch):
    from art_ai_addon.errors import ModelError
    from art_ai_addon.models import registry, store

    root = tmp_path / "store"
    root.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    fake = work / "vgg19-dcbb9e9d.pth"
    fake.write_bytes(b"\0" * 4096)  # named like the registry's VGG19, zero weights
    assert store.find("vgg19-dcbb9e9d.pth", root) is None  # a registry file given bare: only the store's
    assert store.find("vgg19", root) is None
    for explicit in ("./vgg19-dcbb9e9d.pth", str(fake)):  # a path: it must be the published file
        with pytest.raises(ModelError, match="published checksum"):
            store.find(explicit, root)
    monkeypatch.setitem(registry.get("vgg19"), "sha256", store.sha256_file(fake))
    assert store.find("./vgg19-dcbb9e9d.pth", root) == Path("vgg19-dcbb9e9d.pth")
    (work / "mine.pth").write_bytes(b"x")  # the user's own file, not a registry name: used as before
    assert store.find("mine.pth", root) == Path("mine.pth")


def test_store_a_bit_flipped_with_size_and_mtime_kept_is_refused(tmp_path):
    from art_ai_addon.errors import ModelError
    from art_ai_addon.models import store

    root = tmp_path / "store"
    p = _store_file(root, "watercolour", np.random.default_rng(7).bytes(8192))
    assert store.find("watercolour", root) == p  # hashed once, cached
    st = p.stat()
    data = bytearray(p.read_bytes())
    data[5000] ^= 0x01
    with open(p, "r+b") as fh:
        fh.write(bytes(data))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (p.stat().st_size, p.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    with pytest.raises(ModelError, match="corrupt"):
        store.find("watercolour", root)
    store._mem_cache.clear()  # a new process reads .checksums.json
    with pytest.raises(ModelError, match="corrupt"):
        store.find("watercolour", root)


def test_models_remove_deletes_only_models(tmp_path, capsys):
    from art_ai_addon.cli import main

    root = tmp_path / "store"
    model = _store_file(root, "watercolour", b"weights")
    keep = {"holiday.png": b"a photo", "notes.txt": b"text", "stray.pth": b"no sidecar"}
    for name, data in keep.items():
        (root / name).write_bytes(data)
    (root / "holiday.json").write_text('{"name": "holiday", "file": "holiday.png"}')  # a sidecar naming a photo
    for name in ("holiday.png", "holiday", "notes.txt", "stray.pth", "stray", "holiday.json"):
        assert main(["-q", "models", "remove", name, "--models-dir", str(root)]) == 1, name
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "art_ai: error: remove:" in err, err
    assert all((root / name).read_bytes() == data for name, data in keep.items())
    assert (root / "holiday.json").exists()
    assert main(["-q", "models", "remove", "watercolour", "--models-dir", str(root)]) == 0
    assert not model.exists() and not (root / "watercolour.json").exists()


def test_user_model_names_cannot_shadow_the_registry(tmp_path):
    import torch

    from art_ai_addon.models import layouts, store
    from art_ai_addon.validate import check_model_name

    root = tmp_path / "store"
    for name in ("vgg19", "VGG19", "vgg19-dcbb9e9d", "vgg19-dcbb9e9d.pth", "candy.pth", "Candy", "adain_vgg",
                 "vgg_normalised", "big-lama", "arbitrary_predict"):
        with pytest.raises(InputError, match="registry model"):
            check_model_name(name)
        with pytest.raises(InputError, match="registry model"):
            store.save_user_model({}, name, architecture="transformer_net", models_dir_=root)
    assert check_model_name("my-vgg19-look") == "my-vgg19-look"
    shapes, _ = layouts.transformer_net_layout()
    src = tmp_path / "vgg19.pth"
    torch.save({k: torch.zeros(s) for k, s in shapes.items()}, src)
    with pytest.raises(InputError, match="registry model vgg19"):
        store.import_model(src, models_dir_=root)  # its file name would make it "vgg19"
    assert not root.exists() or not [p for p in root.iterdir() if p.suffix in (".pth", ".json")]
    path, _ = store.import_model(src, "my_vgg19_look", models_dir_=root)
    assert path.name == "my_vgg19_look.pth"


# ---------------------------------------------------------------------------------------------
# Wrong but silent API results (issue 27, cause 8)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.int8, np.uint32, np.uint64])
def test_integer_pictures_in_0_255_are_scaled_like_uint8(dtype):
    from art_ai_addon.core import as_image

    a8 = (np.random.default_rng(8).random((24, 24, 3)) * 127).astype(np.uint8)  # int8 holds 0..127
    want = as_image(a8)
    np.testing.assert_array_equal(as_image(a8.astype(dtype)), want)
    out = art.make_seamless(a8.astype(dtype))
    assert out.mean() < 0.9 and abs(out.mean() - art.make_seamless(a8).mean()) < 1e-6  # not white
    np.testing.assert_array_equal(as_image(np.array([[0, 1], [1, 0]], dtype)), [[[0], [1]], [[1], [0]]])  # 0/1 mask


@pytest.mark.parametrize("arr, phrase", [
    (np.array([[0, -5], [3, 200]], np.int32), "negative"),
    (np.array([[0, 70000]], np.int64), "up to 70000"),
    (np.array([[0.0, 255.0], [17.0, 3.0]], np.float32), "divide by 255"),
    (np.array([[1 + 2j]]), "complex"),
])
def test_pixel_values_that_cannot_be_meant_are_refused(arr, phrase):
    from art_ai_addon.core import as_image

    with pytest.raises(InputError, match=phrase):
        as_image(arr)
    np.testing.assert_allclose(as_image(np.array([[0.0, 1.7]], np.float32))[..., 0], [[0.0, 1.0]])  # HDR: clipped


@pytest.mark.parametrize("call, phrase", [
    (lambda c: art.pbr_maps(c, detail=float("nan")), "detail"),
    (lambda c: art.pbr_maps(c, detail="x"), "detail"),
    (lambda c: art.make_seamless(c, band=-4), "band"),
    (lambda c: art.make_seamless(c, overlap=float("inf")), "overlap"),
    (lambda c: art.detect_damage(c, sensitivty=0.9), "sensitivty"),
    (lambda c: art.detect_damage(c, grow=10 ** 6), "grow"),
    (lambda c: art.detect_damage(c, grow=-3), "grow"),
    (lambda c: art.detect_damage(c, grow=2.5), "grow"),
])
def test_api_options_are_checked_not_ignored(call, phrase):
    c = np.random.default_rng(9).random((32, 32, 3)).astype(np.float32)
    with pytest.raises(InputError, match=phrase) as info:
        call(c)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# Ordinary mistakes give one line, not an internal error (issue 27, cause 6)


@pytest.mark.parametrize("call, phrase", [
    (lambda c: art.stylize(c, c, method="gatys", steps=1, seed=10 ** 21, device="cpu"), "seed"),
    (lambda c: art.synthesize_texture(c, (32, 32), seed=10 ** 21), "seed"),
    (lambda c: art.inpaint(c, (np.arange(32 * 32).reshape(32, 32) % 7 == 0).astype(np.float32), method="dip",
                           steps=1, seed=10 ** 21), "seed"),
    (lambda c: art.inpaint(c[:2, :2], np.array([[1, 0], [0, 0]], np.float32), method="dip", steps=1),
     "too small"),
])
def test_api_ordinary_mistakes_are_input_errors(call, phrase):
    c = np.random.default_rng(10).random((32, 32, 3)).astype(np.float32)
    with pytest.raises(InputError, match=phrase) as info:
        call(c)
    assert "\n" not in str(info.value)


def test_ray_unreachable_address_is_one_line(ws):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([PY, "-m", "art_ai_addon", "batch", "seamless.toml", "--ray", "127.0.0.1:1"], cwd=ws,
                       env=env, capture_output=True, text=True, timeout=60)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode in (1, 2) and len(lines) == 1, r.stderr
    assert lines[0].startswith("art_ai: error: --ray: ") and "127.0.0.1:1" in lines[0], r.stderr
    assert not (ws / "out").exists()


def test_closed_stdout_does_not_stop_the_work(tmp_path):
    """`... | head -1`: the reader goes away; every input is still processed, and no traceback."""
    for k in range(3):
        _write(tmp_path / f"f{k}.png", np.random.default_rng(k).random((16, 16, 3)).astype(np.float32))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([PY, "-m", "art_ai_addon", "-q", "stylize", "f0.png", "f1.png", "f2.png", "--style",
                             "f0.png", "-o", "out", "--method", "color"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # nobody reads the output paths
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "error" not in err and "Traceback" not in err, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f0.png", "f1.png", "f2.png"]


def test_worker_answers_a_request_that_is_not_an_object():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([PY, "-m", "art_ai_addon", "worker"], input='[1, 2]\n"run"\n{"op": "ping"}\n{"op": "quit"}\n',
                       env=env, capture_output=True, text=True, timeout=60)
    import json

    replies = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert r.returncode == 0, r.stderr
    assert [m["type"] for m in replies] == ["ready", "log", "log", "pong"], replies
    assert "JSON object" in replies[1]["message"]


# ---------------------------------------------------------------------------------------------
# A job is checked whole, sizes included, before its first step runs (issue 27, cause 4)

_FIRST = _SEAMLESS.format(i="a.png", o="out/first.png")
BATCH_LATE_FAILURES = [
    ("pbr-strength-negative", '[[step]]\ntask = "pbr"\ninput = "a.png"\noutput = "out/maps"\nstrength = -5.0\n',
     "strength"),
    ("inpaint-mask-size", '[[step]]\ntask = "inpaint"\ninput = "a.png"\nmask = "small.png"\nmethod = "telea"\n'
                          'output = "out/i.png"\n', "mask: small.png is 16x16 but the input a.png is 32x32"),
    ("stylize-mask-size", '[[step]]\ntask = "stylize"\ninput = "a.png"\nstyle = "s.png"\nmask = "small.png"\n'
                          'method = "color"\noutput = "out/s.png"\n', "mask: small.png is 16x16"),
    ("gatys-input-too-small", '[[step]]\ntask = "stylize"\ninput = "tiny.png"\nstyle = "s.png"\nmethod = "gatys"\n'
                              'steps = 1\noutput = "out/g.png"\n', "too small for gatys"),
    ("gatys-style-too-small", '[[step]]\ntask = "stylize"\ninput = "a.png"\nstyle = "tiny.png"\nmethod = "gatys"\n'
                              'steps = 1\noutput = "out/g.png"\n', "too small for gatys"),
    ("reference-with-mask", '[[step]]\ntask = "inpaint"\ninput = "a.png"\nmask = "m.png"\nreference = "s.png"\n'
                            'output = "out/i.png"\n', "reference: only used with `detect = true`"),
    ("dip-input-too-small", '[[step]]\ntask = "inpaint"\ninput = "tiny.png"\nmask = "tinymask.png"\n'
                            'method = "dip"\nsteps = 1\noutput = "out/d.png"\n', "too small for dip"),
]


@pytest.mark.parametrize("case", BATCH_LATE_FAILURES, ids=[c[0] for c in BATCH_LATE_FAILURES])
def test_batch_checks_every_step_before_the_first_runs(tmp_path, capsys, case):
    from art_ai_addon.cli import main

    _id, body, phrase = case
    ws = _batch_ws(tmp_path)
    rng = np.random.default_rng(11)
    imageio.write_image(ws / "small.png", (rng.random((16, 16)) > 0.8).astype(np.float32), data=True)
    _write(ws / "tiny.png", rng.random((8, 8, 3)).astype(np.float32))
    imageio.write_image(ws / "tinymask.png", np.eye(8, dtype=np.float32), data=True)
    (ws / "job.toml").write_text(_FIRST + body)
    code = main(["-q", "batch", str(ws / "job.toml")])
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("art_ai: error: job.toml: step 2"), err
    assert phrase in lines[0], (phrase, lines[0])
    assert out == "" and not (ws / "out").exists()  # step 1 did not run



# ---------------------------------------------------------------------------------------------
# Smaller surprises (issue 27, cause 9)


def test_safe_loader_refusal_is_one_quiet_line_that_never_suggests_turning_safety_off(tmp_path):
    import pickle
    import warnings

    import torch

    from art_ai_addon.errors import ModelError
    from art_ai_addon.models import store

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    (tmp_path / "pickled.pth").write_bytes(pickle.dumps({"p": Payload()}, protocol=4))
    (tmp_path / "garbage.pth").write_bytes(b"\0" * 100)
    torch.save({"w": torch.zeros(2), "p": Payload()}, tmp_path / "global.pth")
    for name in ("pickled.pth", "garbage.pth", "global.pth"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ModelError) as info:
                store.load_weights(tmp_path / name)
        text = str(info.value)
        assert "weights_only" not in text and "False" not in text and "\n" not in text, text
        assert name in text and "nothing in it was run" in text, text
        assert not [w for w in caught if issubclass(w.category, UserWarning)], [str(w.message) for w in caught]


def test_job_file_with_a_utf8_bom_runs(tmp_path, capsys):
    from art_ai_addon.cli import main

    ws = _batch_ws(tmp_path)
    (ws / "job.toml").write_bytes(b"\xef\xbb\xbf" + _SEAMLESS.format(i="a.png", o="out/b.png").encode())
    assert main(["-q", "batch", str(ws / "job.toml")]) == 0, capsys.readouterr().err
    assert (ws / "out" / "b.png").is_file()



def test_work_memory_is_checked_against_what_this_process_has(monkeypatch):
    """Cause 3: the work's own need (bytes per pixel of each task, measured) against the memory available."""
    from art_ai_addon import core

    img = np.zeros((1000, 1000), np.float32)
    monkeypatch.setattr(core, "available_memory", lambda: (50 << 20, "the memory available"))
    for call in (lambda: art.make_seamless(img), lambda: art.pbr_maps(img), lambda: art.detect_damage(img),
                 lambda: art.inpaint(img, img, method="telea")):
        with pytest.raises(InputError, match=r"1000x1000 pixels needs about .* of memory .* 50\.0 MB"):
            call()
    assert art.pbr_maps(img[:64, :64])["height"].shape == (64, 64, 1)  # small work still fits
    monkeypatch.undo()
    avail, why = core.available_memory()
    assert avail > 0 and why


def test_a_reference_that_cannot_be_aligned_is_said_not_read_as_no_damage():
    """Issue 27 cause 8: a random, black or other picture as the reference gave an empty mask ("no damage")."""
    import cv2

    from conftest import skimage_rgb

    img = skimage_rgb("astronaut", 192)
    dmg = img.copy()
    cv2.line(dmg, (20, 30), (160, 170), (1, 1, 1), 2)
    for ref in (np.random.default_rng(0).random(img.shape).astype(np.float32), np.zeros_like(img),
                skimage_rgb("coffee", 192)):
        with pytest.raises(InputError, match="could not align"):
            art.detect_damage(dmg, reference=ref)
    # the same picture turned, darker, or as it was still aligns and finds the scratch
    for ref in (np.ascontiguousarray(np.rot90(img)), img * 0.7, img):
        found = art.detect_damage(dmg, reference=ref) > 0.5
        assert 0.005 < found.mean() < 0.05
