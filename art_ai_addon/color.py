"""Colour transfer: the whole colour distribution of a style image onto the content (numpy only).

Iterative distribution transfer (Pitie et al. 2005/2007): sliced optimal transport in OKLab, random
rotations, 1-D quantile matching per axis. A regrain step then smooths the colour change with an
edge-aware (guided) filter steered by the content, so edges stay crisp and noise is not amplified.
"""

from __future__ import annotations

import numpy as np

from .core import as_image, as_mask, blend_masked, linear_to_srgb, luminance, reporter, split_alpha, srgb_to_linear

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


def fit_transfer(src_sample: np.ndarray, tgt: np.ndarray, *, iterations: int, rng, n_q: int = 512, report=None):
    """The sliced transport steps [(basis, [(src_q, tgt_q)] per axis)] that move src_sample (N, 3) to tgt (M, 3).

    Each step moves a point by quantile maps computed from the sample alone, so the same steps apply exactly to
    any number of pixels afterwards (in chunks: a 36-megapixel frame needs no 36-megapixel temporaries).
    """
    x = src_sample.astype(np.float32).copy()
    q = np.linspace(0.0, 1.0, n_q)
    steps = []
    for it in range(iterations):
        if report is not None:
            report(it / iterations, "colour transfer")
        basis, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        if it == 0:
            basis = np.eye(3)  # the first pass aligns the perceptual axes themselves
        basis = basis.astype(np.float32)
        px, pt = x @ basis, tgt @ basis
        # strictly increasing source quantiles for interp (flat regions in the source map to their mean target)
        maps = [(np.quantile(px[:, k], q) + np.arange(n_q) * 1e-7, np.quantile(pt[:, k], q)) for k in range(3)]
        steps.append((basis, maps))
        x = _apply_step(x, basis, maps)
    return steps


def _apply_step(x: np.ndarray, basis: np.ndarray, maps) -> np.ndarray:
    px = x @ basis
    delta = np.empty_like(px)
    for k, (src_q, tgt_q) in enumerate(maps):
        delta[:, k] = np.interp(px[:, k], src_q, tgt_q).astype(np.float32) - px[:, k]
    return x + delta @ basis.T


def apply_transfer(x: np.ndarray, steps, chunk: int = 1 << 20) -> np.ndarray:
    """The points x (N, 3) moved by `steps` (from fit_transfer), a chunk of rows at a time."""
    out = np.empty_like(x, dtype=np.float32)
    for a in range(0, len(x), chunk):
        c = x[a:a + chunk].astype(np.float32)
        for basis, maps in steps:
            c = _apply_step(c, basis, maps)
        out[a:a + chunk] = c
    return out


def distribution_transfer(src: np.ndarray, tgt: np.ndarray, *, iterations: int = 24, seed: int = 0,
                          sample: int = 200_000, report=None) -> np.ndarray:
    """Move the point cloud src (N, 3) to the distribution of tgt (M, 3) by sliced 1-D transport."""
    rng = np.random.default_rng(seed)
    idx_s = rng.choice(len(src), size=min(sample, len(src)), replace=False)
    t = tgt[rng.choice(len(tgt), size=min(sample, len(tgt)), replace=False)].astype(np.float32)
    steps = fit_transfer(src[idx_s], t, iterations=iterations, rng=rng, report=report)
    return apply_transfer(src, steps)


def _block_mean(x: np.ndarray, f: int) -> np.ndarray:
    """Area downscale by an integer factor (edges cropped to a multiple of f)."""
    h, w = (x.shape[0] // f) * f, (x.shape[1] // f) * f
    return x[:h, :w].reshape(h // f, f, w // f, f, *x.shape[2:]).mean(axis=(1, 3), dtype=np.float32)


def _upsample_rows(x: np.ndarray, h: int, w: int, rows: slice) -> np.ndarray:
    """Rows `rows` of the bilinear resize of a small (h', w', C) field to (h, w, C) (pixel centres aligned)."""

    def axis(n_out, n_in, idx):
        pos = np.clip((idx.astype(np.float32) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        i0 = np.floor(pos).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (pos - i0).astype(np.float32)

    y0, y1, wy = axis(h, x.shape[0], np.arange(rows.start, rows.stop))
    x0, x1, wx = axis(w, x.shape[1], np.arange(w))
    part = x[y0] * (1 - wy)[:, None, None] + x[y1] * wy[:, None, None]
    return part[:, x0] * (1 - wx)[None, :, None] + part[:, x1] * wx[None, :, None]


def guided_filter_fast(guide: np.ndarray, src: np.ndarray, r: int, eps: float, max_pixels: int = 2_000_000):
    """He & Sun's fast guided filter (2015): the linear coefficients at a reduced size, applied at full size.

    Identical to `guided_filter` for images up to `max_pixels`; above, the coefficients are found on a reduced
    copy and applied block by block, written over `src` (so memory stays one copy of the image).
    """
    h, w = guide.shape
    f = int(np.ceil(np.sqrt(h * w / max_pixels)))
    if f <= 1:
        return guided_filter(guide, src, r, eps)
    g, s = _block_mean(guide, f), _block_mean(src, f)
    rl = max(1, int(round(r / f)))
    mean_g = box_filter(g[:, :, None], rl)
    mean_s = box_filter(s, rl)
    cov = box_filter(g[:, :, None] * s, rl) - mean_g * mean_s
    var = box_filter((g * g)[:, :, None], rl) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_s - a * mean_g
    mean_a, mean_b = box_filter(a, rl), box_filter(b, rl)
    step = max(1, _CHUNK // w)
    for y in range(0, h, step):
        rows = slice(y, min(h, y + step))
        src[rows] = _upsample_rows(mean_a, h, w, rows) * guide[rows, :, None] + _upsample_rows(mean_b, h, w, rows)
    return src


_CHUNK = 1 << 20  # pixels per block of the per-pixel steps: temporaries stay ~tens of MB at any image size


def _chunks(n: int):
    for a in range(0, n, _CHUNK):
        yield slice(a, min(n, a + _CHUNK))


def color_transfer(content, style, *, strength: float = 1.0, preserve_color: bool = False, mask=None,
                   seed: int = 0, iterations: int = 24, regrain: bool = True, fit_mask=None, progress=None,
                   cancel=None, **_ignored) -> np.ndarray:
    """The content with the style's colour distribution; see the module docstring.

    `fit_mask`: the mapping is learned from these pixels only (a style layer's region) and applied to every pixel.

    Every per-pixel step runs a block of pixels at a time, and the regrain filter works at a reduced size on large
    frames, so memory stays a few copies of the image whatever its size.
    """
    rep = reporter(progress, cancel)
    img = as_image(content, "content")
    sty = as_image(style, "style")
    m = as_mask(mask, img.shape, "mask")
    h, w, c = img.shape
    n = h * w
    flat = img.reshape(n, c)
    rgb_of = (lambda sl: np.repeat(flat[sl], 3, axis=1)) if c == 1 else (lambda sl: flat[sl, :3])
    lab = np.empty((n, 3), np.float32)
    for sl in _chunks(n):
        lab[sl] = rgb_to_oklab(rgb_of(sl))
    srgb_style, style_alpha = split_alpha(sty)
    lab_style = rgb_to_oklab(srgb_style).reshape(-1, 3)
    if style_alpha is not None:  # transparent style pixels carry no colour
        keep = style_alpha.reshape(-1) > 0.5
        if keep.any():
            lab_style = lab_style[keep]
    inside = m.reshape(-1) > 0 if m is not None and (m > 0).any() else None  # match the masked region only
    src_pts = lab if inside is None else lab[inside]
    if fit_mask is not None:
        fit = as_mask(fit_mask, img.shape, "fit_mask").reshape(-1) > 0.5
        if fit.any():
            src_pts = lab[fit]
    if preserve_color:
        l_src = np.quantile(src_pts[:, 0], np.linspace(0, 1, 1024)) + np.arange(1024) * 1e-7
        l_tgt = np.quantile(lab_style[:, 0], np.linspace(0, 1, 1024))
        out_lab = lab.copy()
        for sl in _chunks(n):
            out_lab[sl, 0] = np.interp(lab[sl, 0], l_src, l_tgt)
    else:
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(src_pts), size=min(200_000, len(src_pts)), replace=False)
        tgt = lab_style[rng.choice(len(lab_style), size=min(200_000, len(lab_style)), replace=False)]
        steps = fit_transfer(src_pts[idx], tgt.astype(np.float32), iterations=iterations, rng=rng,
                             report=rep.sub(0, 0.8))
        out_lab = lab.copy()
        if inside is None or fit_mask is not None:
            for sl in _chunks(n):
                out_lab[sl] = apply_transfer(lab[sl], steps)
        else:
            out_lab[inside] = apply_transfer(src_pts, steps)
    if regrain:
        rep(0.85, "regrain")
        out_lab -= lab  # the colour change, smoothed along the content's edges
        r = max(2, int(round(min(h, w) / 128)))
        out_lab = guided_filter_fast(lab[:, 0].reshape(h, w), out_lab.reshape(h, w, 3), r, 1e-4).reshape(n, 3)
        out_lab += lab
    del lab
    s = float(np.clip(strength, 0.0, 1.0))
    mflat = m.reshape(-1) if m is not None else None
    out = np.empty((n, c), np.float32)
    for sl in _chunks(n):
        rgb = rgb_of(sl)
        res = rgb + (oklab_to_rgb(out_lab[sl]) - rgb) * s
        if mflat is not None:
            res = blend_masked(rgb[:, None], res[:, None], mflat[sl, None])[:, 0]
        res = np.clip(res, 0.0, 1.0)
        if c == 1:
            out[sl, 0] = luminance(res)
        else:
            out[sl, :3] = res
            if c == 4:
                out[sl, 3] = flat[sl, 3]  # alpha passes through
    rep(1.0, "done")
    return out.reshape(h, w, c)
