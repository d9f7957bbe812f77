"""Make an image tile: remove the smooth part of the wrap seam, then re-quilt the seam cross."""

from __future__ import annotations

import numpy as np

from .quilt import Quilter, grid


def smooth_component(img: np.ndarray) -> np.ndarray:
    """Moisan's periodic + smooth decomposition: the smooth part that carries the wrap discontinuity.

    Solving a Poisson problem on the torus whose only source is the jump across the image borders gives a
    slowly varying field; the image minus it tiles at low frequencies while keeping all detail.
    """
    H, W = img.shape[:2]
    v = np.zeros(img.shape, np.float64)
    dx = img[:, 0] - img[:, -1]
    dy = img[0, :] - img[-1, :]
    v[:, 0] += dx
    v[:, -1] -= dx
    v[0, :] += dy
    v[-1, :] -= dy
    q = np.arange(H)[:, None]
    r = np.arange(W)[None, :]
    denom = 2 * np.cos(2 * np.pi * q / H) + 2 * np.cos(2 * np.pi * r / W) - 4
    denom[0, 0] = 1.0
    V = np.fft.fft2(v, axes=(0, 1))
    S = V / denom[:, :, None]
    S[0, 0] = 0
    return np.real(np.fft.ifft2(S, axes=(0, 1))).astype(np.float32)


def seamless(img: np.ndarray, *, band: int | None = None, overlap: int | None = None, seed: int = 0,
             lowfreq: bool = True, tolerance: float = 0.05, rep=None) -> np.ndarray:
    """Same size and look, no wrap seam. `img` (H, W, C) float32; every channel (alpha too) moves together."""
    H, W, C = img.shape
    src = img.astype(np.float32)
    if lowfreq:
        src = np.clip(src - smooth_component(src), 0.0, 1.0)
    if min(H, W) < 12:
        return src
    if band is None:
        band = int(np.clip(min(H, W) // 6, 8, 64))
    band = int(min(band, H // 2, W // 2))
    if overlap is None:
        overlap = max(2, band // 4)
    overlap = int(min(overlap, band // 3))
    hy, hx = H // 2, W // 2
    canvas = np.ascontiguousarray(np.roll(src, (hy, hx), axis=(0, 1)))
    filled = np.ones((H, W), bool)
    # the old wrap seams now run through the middle; clear a cross of width band - 2 * overlap around them
    x0 = hx - band // 2
    y0 = hy - band // 2
    filled[:, x0 + overlap:x0 + band - overlap] = False
    filled[y0 + overlap:y0 + band - overlap, :] = False
    q = Quilter(src, canvas, filled, wrap=True, overlap=overlap, rng=np.random.default_rng(seed),
                tolerance=tolerance)
    step = band - overlap
    # grids aligned on the cross so that one block of each band sits exactly on the crossing; it goes last
    rows = [((y + y0) % H, n) for y, n in grid(H, step, True)]
    cols = [((x + x0) % W, n) for x, n in grid(W, step, True)]
    rows = rows[1:] + rows[:1]
    cols = cols[1:] + cols[:1]
    total = len(rows) + len(cols)
    k = 0
    for y, sy in rows:
        q.place(y, x0, min(sy + overlap, H), band)
        k += 1
        if rep is not None:
            rep(k / total, "re-synthesizing the seam")
    for x, sx in cols:
        q.place(y0, x, band, min(sx + overlap, W))
        k += 1
        if rep is not None:
            rep(k / total, "re-synthesizing the seam")
    return np.roll(q.canvas, (-hy, -hx), axis=(0, 1))
