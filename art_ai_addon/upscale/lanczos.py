"""Lanczos-3 resampling in numpy only (Blender's own process has no OpenCV or torch to lean on).

Separable: each axis is resampled with a table of 6 taps per output pixel (more when shrinking: the kernel is
widened by the factor, so downscaling is antialiased), sample centres at (i + 0.5) / scale - 0.5. Past the
border, taps are dropped and the rest renormalised (as Pillow's LANCZOS does; the tests compare with it) or, for
tileable textures, they wrap around, so a tiling texture still tiles after resizing.
"""

from __future__ import annotations

import numpy as np

A = 3  # lobes


def _kernel(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    out = np.sinc(x) * np.sinc(x / A)
    out[x >= A] = 0.0
    return out


def taps(n_in: int, n_out: int, wrap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(indices (n_out, k), weights (n_out, k)) resampling n_in samples to n_out; weights of a row sum to 1."""
    scale = n_out / n_in
    support = A / min(scale, 1.0)  # widened when shrinking
    centres = (np.arange(n_out, dtype=np.float64) + 0.5) / scale - 0.5
    first = np.floor(centres - support).astype(np.int64) + 1
    k = int(np.ceil(2 * support)) + 1
    idx = first[:, None] + np.arange(k)[None, :]
    w = _kernel((idx - centres[:, None]) * min(scale, 1.0))
    if wrap:
        idx = np.mod(idx, n_in)
    else:  # taps past the border are dropped and the rest renormalised (as Pillow does)
        w[(idx < 0) | (idx >= n_in)] = 0.0
        idx = np.clip(idx, 0, n_in - 1)
    w /= w.sum(axis=1, keepdims=True)
    return idx, w.astype(np.float32)


def _resize_axis(img: np.ndarray, n_out: int, axis: int, wrap: bool) -> np.ndarray:
    n_in = img.shape[axis]
    if n_in == n_out:
        return img
    idx, w = taps(n_in, n_out, wrap)
    moved = np.moveaxis(img, axis, 0)
    out = np.zeros((n_out,) + moved.shape[1:], dtype=np.float32)
    extra = (slice(None),) + (None,) * (moved.ndim - 1)
    for j in range(idx.shape[1]):  # one gather per tap: memory stays at one output-sized array
        out += moved[idx[:, j]] * w[:, j][extra]
    return np.moveaxis(out, 0, axis)


def resize(img: np.ndarray, size: tuple[int, int], *, wrap: bool = False, clip: bool = True) -> np.ndarray:
    """img (H, W, C) float32 resized to size (h, w) with Lanczos-3; clipped to [0, 1] unless `clip` is False
    (HDR values and data maps keep their range; Lanczos rings a little past the input's range at hard edges)."""
    h, w = int(size[0]), int(size[1])
    arr = np.asarray(img, dtype=np.float32)
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[:, :, None]
    # the shrinking axis first keeps the intermediate small
    if h / arr.shape[0] <= w / arr.shape[1]:
        out = _resize_axis(_resize_axis(arr, h, 0, wrap), w, 1, wrap)
    else:
        out = _resize_axis(_resize_axis(arr, w, 1, wrap), h, 0, wrap)
    if clip:
        out = np.clip(out, min(float(arr.min()), 0.0), max(float(arr.max()), 1.0))
    out = np.ascontiguousarray(out, dtype=np.float32)
    return out[:, :, 0] if squeeze else out
