"""Colour transfer: the whole colour distribution of a style image onto the content (numpy only).

Iterative distribution transfer (Pitie et al. 2005/2007): sliced optimal transport in OKLab, random
rotations, 1-D quantile matching per axis. A regrain step then smooths the colour change with an
edge-aware (guided) filter steered by the content, so edges stay crisp and noise is not amplified.
"""

from __future__ import annotations

import numpy as np

from .core import as_image, as_mask, blend_masked, linear_to_srgb, merge_alpha, reporter, split_alpha, srgb_to_linear

_M1 = np.array([[0.4122214708, 0.5363325363, 0.0514459929],
                [0.2119034982, 0.6806995451, 0.1073969566],
                [0.0883024619, 0.2817188376, 0.6299787005]], dtype=np.float32)
_M2 = np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                [1.9779984951, -2.4285922050, 0.4505937099],
                [0.0259040371, 0.7827717662, -0.8086757660]], dtype=np.float32)
_M1_INV = np.linalg.inv(_M1.astype(np.float64)).astype(np.float32)
_M2_INV = np.linalg.inv(_M2.astype(np.float64)).astype(np.float32)


def rgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded (..., 3) to OKLab (L in [0, 1], a/b about +-0.4)."""
    lms = srgb_to_linear(rgb) @ _M1.T
    return (np.cbrt(np.maximum(lms, 0.0)) @ _M2.T).astype(np.float32)


def oklab_to_rgb(lab: np.ndarray) -> np.ndarray:
    lms = (lab @ _M2_INV.T) ** 3
    return np.clip(linear_to_srgb(np.maximum(lms @ _M1_INV.T, 0.0)), 0.0, 1.0).astype(np.float32)


def box_filter(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window with edge clamping, via integral images; x is (H, W) or (H, W, C)."""
    pad = [(r + 1, r), (r + 1, r)] + [(0, 0)] * (x.ndim - 2)
    s = np.pad(x.astype(np.float64), pad, mode="edge").cumsum(0).cumsum(1)
    k = 2 * r + 1
    total = s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]
    return (total / (k * k)).astype(np.float32)


def guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a grey guide (H, W) and a multi-channel source (H, W, C)."""
    g = guide[:, :, None]
    mean_g = box_filter(g, r)
    mean_s = box_filter(src, r)
    cov = box_filter(g * src, r) - mean_g * mean_s
    var = box_filter(g * g, r) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_s - a * mean_g
    return box_filter(a, r) * g + box_filter(b, r)


def _quantile_map(values: np.ndarray, sample_src: np.ndarray, sample_tgt: np.ndarray, n_q: int) -> np.ndarray:
    q = np.linspace(0.0, 1.0, n_q)
    src_q = np.quantile(sample_src, q)
    tgt_q = np.quantile(sample_tgt, q)
    # strictly increasing source quantiles for interp (flat regions in the source map to their mean target)
    src_q = src_q + np.arange(n_q) * 1e-7
    return np.interp(values, src_q, tgt_q).astype(np.float32)


def distribution_transfer(src: np.ndarray, tgt: np.ndarray, *, iterations: int = 24, seed: int = 0,
                          sample: int = 200_000, report=None) -> np.ndarray:
    """Move the point cloud src (N, 3) to the distribution of tgt (M, 3) by sliced 1-D transport."""
    rng = np.random.default_rng(seed)
    x = src.astype(np.float32).copy()
    idx_s = rng.choice(len(x), size=min(sample, len(x)), replace=False)
    t = tgt[rng.choice(len(tgt), size=min(sample, len(tgt)), replace=False)].astype(np.float32)
    n_q = 512
    for it in range(iterations):
        if report is not None:
            report(it / iterations, "colour transfer")
        basis, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        if it == 0:
            basis = np.eye(3)  # the first pass aligns the perceptual axes themselves
        basis = basis.astype(np.float32)
        px = x @ basis
        pt = t @ basis
        sample_px = px[idx_s]
        delta = np.empty_like(px)
        for k in range(3):
            delta[:, k] = _quantile_map(px[:, k], sample_px[:, k], pt[:, k], n_q) - px[:, k]
        x += delta @ basis.T
    return x


def color_transfer(content, style, *, strength: float = 1.0, preserve_color: bool = False, mask=None,
                   seed: int = 0, iterations: int = 24, regrain: bool = True, progress=None, cancel=None,
                   **_ignored) -> np.ndarray:
    """The content with the style's colour distribution; see the module docstring."""
    rep = reporter(progress, cancel)
    img = as_image(content, "content")
    sty = as_image(style, "style")
    m = as_mask(mask, img.shape, "mask")
    rgb, alpha = split_alpha(img)
    srgb_style, style_alpha = split_alpha(sty)
    h, w = rgb.shape[:2]
    lab = rgb_to_oklab(rgb).reshape(-1, 3)
    lab_style = rgb_to_oklab(srgb_style).reshape(-1, 3)
    if style_alpha is not None:  # transparent style pixels carry no colour
        keep = style_alpha.reshape(-1) > 0.5
        if keep.any():
            lab_style = lab_style[keep]
    src_pts = lab
    if m is not None and (m > 0).any():  # match the distribution of the masked region only
        src_pts = lab[m.reshape(-1) > 0]
    if preserve_color:
        mapped = _quantile_map(lab[:, 0], src_pts[:, 0], lab_style[:, 0], 1024)
        out_lab = lab.copy()
        out_lab[:, 0] = mapped
    else:
        moved = distribution_transfer(src_pts, lab_style, iterations=iterations, seed=seed, report=rep.sub(0, 0.8))
        if src_pts is lab:
            out_lab = moved
        else:
            # extend the mapping to all pixels: the masked ones moved, the rest take their nearest offset
            out_lab = lab.copy()
            out_lab[m.reshape(-1) > 0] = moved
    out_lab = out_lab.reshape(h, w, 3)
    lab_img = lab.reshape(h, w, 3)
    if regrain:
        rep(0.85, "regrain")
        change = out_lab - lab_img
        r = max(2, int(round(min(h, w) / 128)))
        change = guided_filter(lab_img[:, :, 0], change, r, 1e-4)
        out_lab = lab_img + change
    out = oklab_to_rgb(out_lab)
    s = float(np.clip(strength, 0.0, 1.0))
    out = rgb + (out - rgb) * s
    out = blend_masked(rgb, out, m)
    rep(1.0, "done")
    return merge_alpha(out, alpha, like=img)
