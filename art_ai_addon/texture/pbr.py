"""Height, normal, roughness and AO maps from one albedo photo (heuristics an artist would start from)."""

from __future__ import annotations

import numpy as np


def gaussian(x: np.ndarray, sigma: float, wrap: bool) -> np.ndarray:
    """Gaussian blur of a 2-D map; on a torus (exact, via FFT) when `wrap`, mirrored borders otherwise."""
    if sigma <= 0:
        return x.astype(np.float32)
    H, W = x.shape
    if wrap:
        fy = np.fft.fftfreq(H)[:, None]
        fx = np.fft.rfftfreq(W)[None, :]
        g = np.exp(-2.0 * (np.pi * sigma) ** 2 * (fy * fy + fx * fx))
        return np.fft.irfft2(np.fft.rfft2(x) * g, s=(H, W)).astype(np.float32)
    import cv2

    k = int(2 * round(3 * sigma) + 1)
    if k > 2 * min(H, W):  # huge kernels: blur a smaller copy
        f = max(2, int(sigma // 8))
        small = cv2.resize(x, (max(1, W // f), max(1, H // f)), interpolation=cv2.INTER_AREA)
        small = gaussian(small, sigma / f, False)
        return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return cv2.GaussianBlur(x.astype(np.float32), (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)


def _normalise(x: np.ndarray, lo: float = 0.5, hi: float = 99.5) -> np.ndarray:
    a, b = np.percentile(x, [lo, hi])
    if b - a < 1e-8:
        return np.full_like(x, 0.5, dtype=np.float32)
    return np.clip((x - a) / (b - a), 0.0, 1.0).astype(np.float32)


def height_map(lum: np.ndarray, wrap: bool, detail: float = 1.0) -> np.ndarray:
    """Luminance as height with large-scale shading removed: a band-pass over a few scales, in [0, 1]."""
    H, W = lum.shape
    big = max(2.0, min(H, W) / 8.0)
    base = lum - gaussian(lum, big, wrap)  # no light gradients or vignetting
    mid = gaussian(base, max(1.0, big / 8.0), wrap)  # broad forms (bricks, stones)
    fine = gaussian(base, 0.7, wrap) - mid  # pores and grain
    return _normalise(mid + detail * fine)


def normal_map(height: np.ndarray, strength: float, wrap: bool, directx: bool = False) -> np.ndarray:
    """Tangent-space normal map (H, W, 3) encoded as (n + 1) / 2; OpenGL (+Y up) unless `directx`.

    Height in [0, 1] spans `4 * strength` pixels of relief, so strength 1 gives clear but moderate bumps.
    """
    h = height.astype(np.float64) * (4.0 * strength)
    if wrap:
        dx = (np.roll(h, -1, 1) - np.roll(h, 1, 1)) * 0.5
        dr = (np.roll(h, -1, 0) - np.roll(h, 1, 0)) * 0.5
    else:  # np.gradient needs 2 samples along an axis: a 1-pixel-thin image has no slope across it
        dr = np.gradient(h, axis=0) if h.shape[0] > 1 else np.zeros_like(h)
        dx = np.gradient(h, axis=1) if h.shape[1] > 1 else np.zeros_like(h)
    # rows go down the image while tangent-space +Y points up: dh/dy_up = -dh/drow
    nx = -dx
    ny = dr
    if directx:
        ny = -ny
    nz = np.ones_like(h)
    n = np.stack([nx, ny, nz], axis=2)
    n /= np.linalg.norm(n, axis=2, keepdims=True)
    return ((n + 1.0) * 0.5).astype(np.float32)


def ao_map(height: np.ndarray, wrap: bool) -> np.ndarray:
    """Cavities (points below their surroundings at a few radii) darken; open surfaces stay white."""
    H, W = height.shape
    occ = np.zeros_like(height, dtype=np.float32)
    for s in (2.0, 6.0, 16.0):
        if s > min(H, W) / 2:
            break
        occ += np.clip(gaussian(height, s, wrap) - height, 0.0, None)
    occ = occ / max(float(np.percentile(occ, 99.5)), 1e-6)
    return np.clip(1.0 - 0.8 * occ, 0.0, 1.0).astype(np.float32)


def roughness_map(lum: np.ndarray, height: np.ndarray, wrap: bool) -> np.ndarray:
    """Busy, dark and recessed areas read as rough; smooth bright areas as shinier. Range about 0.35-0.95."""
    local = gaussian(lum, 1.0, wrap)
    var = np.clip(gaussian(local * local, 3.0, wrap) - gaussian(local, 3.0, wrap) ** 2, 0.0, None)
    busy = _normalise(np.sqrt(var))
    dark = 1.0 - _normalise(gaussian(lum, 2.0, wrap))
    low = 1.0 - height
    r = 0.45 * busy + 0.35 * dark + 0.2 * low
    return np.clip(0.35 + 0.6 * _normalise(r, 1.0, 99.0), 0.0, 1.0).astype(np.float32)


def tiles(img: np.ndarray) -> bool:
    """True if the wrap-around jumps are no bigger than ordinary neighbour differences (it already tiles)."""
    g = img.mean(axis=2) if img.ndim == 3 else img
    if min(g.shape) < 2:  # a 1-pixel-thin strip: nothing to compare across
        return False
    jump = (np.abs(g[:, 0] - g[:, -1]).mean() + np.abs(g[0] - g[-1]).mean()) / 2
    inner = (np.abs(np.diff(g, axis=1)).mean() + np.abs(np.diff(g, axis=0)).mean()) / 2
    return bool(jump <= 1.5 * inner + 1e-6)
