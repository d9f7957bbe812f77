"""Small helpers shared by the stylize methods: numpy <-> torch, resizing, luminance-only transfer."""

from __future__ import annotations

import numpy as np

from ..color import oklab_to_rgb, rgb_to_oklab


def to_tensor(rgb: np.ndarray, device, dtype=None):
    """(H, W, 3) float32 -> (1, 3, H, W) tensor on `device`."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    return t.to(device=device, dtype=dtype or torch.float32)


def to_numpy(t) -> np.ndarray:
    """(1, 3, H, W) tensor -> (H, W, 3) float32 in [0, 1]."""
    return np.ascontiguousarray(t.detach().float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy(), dtype=np.float32)


def resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Area filter when shrinking, cubic when enlarging; keeps the channel axis."""
    import cv2

    h, w = max(1, int(h)), max(1, int(w))
    if img.shape[0] == h and img.shape[1] == w:
        return img
    interp = cv2.INTER_AREA if h * w < img.shape[0] * img.shape[1] else cv2.INTER_CUBIC
    out = cv2.resize(img, (w, h), interpolation=interp)
    if out.ndim == 2:
        out = out[:, :, None]
    if out.dtype == np.float32:
        return np.clip(out, 0.0, 1.0, out=out)  # out is cv2's fresh array
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def fit_long_side(img: np.ndarray, long_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = long_side / max(h, w)
    return resize(img, round(h * s), round(w * s))


def luminance_pair(content_rgb: np.ndarray, style_rgb: np.ndarray):
    """Grey versions of content and style for colour-preserving transfer.

    The style's lightness is matched to the content's mean and spread first (Gatys et al. 2016,
    "Preserving colour"), so the transferred luminance does not shift the content's overall tone.
    """
    lc = rgb_to_oklab(content_rgb)[:, :, 0]
    ls = rgb_to_oklab(style_rgb)[:, :, 0]
    ls = (ls - ls.mean()) / (ls.std() + 1e-6) * lc.std() + lc.mean()
    grey = lambda L: np.repeat(oklab_to_rgb(np.stack([L, 0 * L, 0 * L], axis=-1))[:, :, :1], 3, axis=2)  # noqa: E731
    return grey(lc), grey(np.clip(ls, 0.0, 1.0))


def recolor(content_rgb: np.ndarray, stylized_rgb: np.ndarray) -> np.ndarray:
    """The stylized lightness with the content's chroma (OKLab a, b)."""
    lab = rgb_to_oklab(content_rgb)
    lab_s = rgb_to_oklab(stylized_rgb)
    lab[:, :, 0] = lab_s[:, :, 0]
    return oklab_to_rgb(lab)
