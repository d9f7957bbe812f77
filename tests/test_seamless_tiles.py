"""Make Seamless measures the seam first (issue 29.5): a texture that already tiles comes back (almost) unchanged,
one that does not still gets seamless. Periodic textures: inverse FFTs of random spectra of several slopes, sizes
and seeds (they tile exactly), and real textures made periodic (mirrored, and patch synthesis on the torus)."""

from __future__ import annotations

import numpy as np
import pytest

from art_ai_addon import make_seamless, synthesize_texture
from clean_corpus import skimage_photo


def periodic_noise(h: int, w: int, slope: float, seed: int, channels: int) -> np.ndarray:
    """Inverse FFT of a random spectrum with power ~ f^-slope: tiles exactly; mean 0.5, std 0.15 per channel."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    f[0, 0] = 1.0
    amp = f ** (-slope / 2)
    amp[0, 0] = 0.0
    out = []
    for _ in range(channels):
        g = np.real(np.fft.ifft2(amp * (rng.standard_normal((h, w)) + 1j * rng.standard_normal((h, w)))))
        out.append(0.5 + 0.15 * (g - g.mean()) / g.std())
    return np.clip(np.stack(out, axis=2), 0, 1).astype(np.float32)


def mirrored(img: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """A real texture made periodic by mirroring it into a 2x2 tile, then rolled so the wrap lies elsewhere."""
    row = np.concatenate([img, img[:, ::-1]], axis=1)
    return np.ascontiguousarray(np.roll(np.concatenate([row, row[::-1]], axis=0), shift, axis=(0, 1)))


def wrap_ratio(img: np.ndarray) -> float:
    """Mean jump across the wrap-around borders over the mean jump between ordinary neighbours."""
    g = img[:, :, :3].mean(axis=2)
    jump = (np.abs(g[:, 0] - g[:, -1]).mean() + np.abs(g[0] - g[-1]).mean()) / 2
    inner = (np.abs(np.diff(g, axis=1)).mean() + np.abs(np.diff(g, axis=0)).mean()) / 2
    return float(jump / inner)


def periodic_textures():
    for h, w in ((48, 48), (64, 64), (96, 96), (128, 128), (200, 200), (64, 160), (120, 72)):
        for slope in (1.0, 1.5, 2.0, 2.5, 3.0):
            for seed in range(3):
                yield f"noise {h}x{w} b{slope} s{seed}", periodic_noise(h, w, slope, 1000 * seed + h + w,
                                                                        1 if seed == 0 else 3)
    for name in ("gravel", "grass", "brick", "astronaut", "coffee", "chelsea"):
        for size in (32, 48, 64):
            yield f"mirror {name} {size}", mirrored(skimage_photo(name, size, crop=size / 256), (size // 3, size // 5))


def test_textures_that_tile_come_back_unchanged():
    changes = {}
    for label, tex in periodic_textures():
        out = make_seamless(tex)
        assert out.shape == tex.shape
        changes[label] = float(np.abs(out - tex).mean())
    values = np.array(list(changes.values()))
    worst = max(changes, key=changes.__getitem__)
    print(f"{len(values)} periodic textures: mean change median {np.median(values):.5f}, "
          f"worst {values.max():.5f} ({worst})")
    assert np.median(values) < 0.001
    assert values.max() < 0.005, (worst, changes[worst])


@pytest.mark.parametrize("size", [64, 96])
def test_patch_synthesis_on_the_torus_comes_back_unchanged(size):
    """A real texture made tileable by the extension itself: Make Seamless on it changes (almost) nothing."""
    for name in ("gravel", "brick"):
        tex = synthesize_texture(skimage_photo(name, 64, crop=0.25), (size, size), method="patch", seed=1)
        assert np.abs(make_seamless(tex) - tex).mean() < 0.005


def test_one_edge_pair_that_meets_is_left_alone():
    """Tiles across but not down (light falls from the top): the top/bottom seam goes; the left and right edges
    still meet, and the detail is untouched (only a smooth field evens out the light, and the band over the
    top/bottom seam is copied from the picture)."""
    tex = periodic_noise(96, 96, 2.0, 5, 3)
    ramp = np.linspace(0.75, 1.0, 96, dtype=np.float32)[:, None, None]
    lit = tex * ramp
    out = make_seamless(lit)
    g_in, g_out = lit.mean(axis=2), out.mean(axis=2)
    assert np.abs(g_in[:, 0] - g_in[:, -1]).mean() < 2 * np.abs(np.diff(g_in, axis=1)).mean()  # it tiles across
    assert wrap_ratio(lit) > 1.5 and wrap_ratio(out) < 1.2
    assert np.abs(g_out[:, 0] - g_out[:, -1]).mean() < 2 * np.abs(np.diff(g_out, axis=1)).mean()
    # away from the top/bottom seam the change is smooth: no detail moved, no vertical band across the picture
    change = (out - lit)[36:60]
    for axis in (0, 1):  # (a pixel clipped at 0 or 1 may keep its value: the 99th percentile)
        assert np.percentile(np.abs(np.diff(change, axis=axis)), 99) < 0.005


def test_textures_that_do_not_tile_still_get_seamless():
    """Crops of photos and textures and non-periodic windows of noise: where the wrap clearly shows, it goes."""
    cases = []
    for name in ("gravel", "grass", "brick", "coffee", "astronaut", "moon"):
        for size, crop in ((96, 0.25), (128, 0.25), (128, 0.5)):
            cases.append((f"{name} {size} {crop}", skimage_photo(name, size, crop=crop)))
    for slope in (1.5, 2.5):
        cases.append((f"window b{slope}", periodic_noise(256, 256, slope, 9, 3)[:96, :96].copy()))
    clear = 0
    for label, img in cases:
        before, after = wrap_ratio(img), wrap_ratio(make_seamless(img))
        if before > 2.0:
            clear += 1
            assert after < min(1.6, 0.6 * before), (label, before, after)
        assert after <= max(before, 1.3), (label, before, after)  # a faint seam never gets worse
    assert clear >= len(cases) // 2
