"""Colour transfer: the whole colour distribution of a style image onto the content (numpy only).

Iterative distribution transfer (Pitie et al. 2005/2007): sliced optimal transport in OKLab, random
rotations, 1-D quantile matching per axis. A regrain step then smooths the colour change with an
edge-aware (guided) filter steered by the content, so edges stay crisp and noise is not amplified.

At production sizes the mapping is learned and the colour change smoothed on a small copy of the picture (about
65k pixels, every s-th pixel of every s-th row); the full picture then costs a few passes over its pixels: the
guided filter's local linear model (change = a * luma + b, with a and b smooth fields) is brought up to full size
bilinearly and evaluated against the full picture's own luma (He & Sun's fast guided filter, 2015), on row bands
in parallel threads.
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


_BINS = 16384  # each 1-D quantile map is resampled on this many equal steps: a lookup, not a binary search
_SMALL = 65_536  # pixels (about) of the copy the mapping is learned and the change smoothed on
_FIT = 65_536  # most points the sliced transport is fitted on (the style side: half of it)
_LUMA = (0.2126, 0.7152, 0.0722)  # the guide: Rec.709 luma of the sRGB-encoded values


def _sorted_quantiles(x_sorted: np.ndarray, q: np.ndarray) -> np.ndarray:
    """np.quantile's linear interpolation, on data already sorted along its last axis."""
    pos = q * (x_sorted.shape[-1] - 1)
    i = np.minimum(pos.astype(np.int64), x_sorted.shape[-1] - 2) if x_sorted.shape[-1] > 1 else np.zeros_like(
        pos, dtype=np.int64)
    f = (pos - i).astype(np.float32)
    if x_sorted.shape[-1] == 1:
        return np.repeat(x_sorted, len(q), axis=-1)
    return x_sorted[..., i] * (1 - f) + x_sorted[..., i + 1] * f


class _Step:
    """One sliced-transport step: rotate by `basis`, move each axis by its 1-D quantile map, rotate back.

    Each map is the piecewise-linear function through (source quantile, target quantile), resampled on _BINS equal
    steps between the first and last source quantile (flat beyond them, as np.interp is), so applying it is an
    index computation and one lerp per value.
    """

    def __init__(self, basis: np.ndarray, src_q: np.ndarray, tgt_q: np.ndarray):
        self.basis = basis.astype(np.float32)  # (3, 3), columns are the axes
        n_q = src_q.shape[1]
        src_q = src_q.astype(np.float64) + np.arange(n_q) * 1e-7  # strictly increasing for interp
        span = np.maximum(src_q[:, -1] - src_q[:, 0], 1e-12)
        self.scale = (_BINS / span).astype(np.float32)[:, None]
        self.shift = (-src_q[:, 0] * _BINS / span).astype(np.float32)[:, None]
        grid = src_q[:, :1] + span[:, None] * np.linspace(0.0, 1.0, _BINS + 1)[None]
        tab = np.stack([np.interp(grid[k], src_q[k], tgt_q[k]) for k in range(3)]).astype(np.float32)
        self.tab = tab[:, :-1].reshape(-1).copy()  # the three tables end to end: axis k starts at k * _BINS
        self.slope = (tab[:, 1:] - tab[:, :-1]).astype(np.float32).reshape(-1)
        self.start = (np.arange(3, dtype=np.int32) * _BINS)[:, None]
        self.top = np.nextafter(np.float32(_BINS), np.float32(0))  # the last bin's top, below the table's end

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (3, N) float32 -> moved (3, N)."""
        p = self.basis.T @ x
        u = p * self.scale
        u += self.shift
        np.maximum(u, 0.0, out=u)
        np.minimum(u, self.top, out=u)
        i = u.astype(np.int32)
        u -= i
        i += self.start
        d = self.slope[i]
        d *= u
        d += self.tab[i]
        d -= p
        return x + self.basis @ d


def fit_transfer(src_sample: np.ndarray, tgt: np.ndarray, *, iterations: int, rng, n_q: int = 512,
                 report=None) -> tuple[list, np.ndarray]:
    """The sliced transport steps that move src_sample (3, N) to tgt (3, M), and src_sample moved by them.

    Each step moves a point by quantile maps computed from the sample alone, so the same steps apply to any other
    points afterwards (`apply_transfer`).
    """
    x = np.ascontiguousarray(src_sample, dtype=np.float32)
    tgt = np.ascontiguousarray(tgt, dtype=np.float32)
    q = np.linspace(0.0, 1.0, n_q)
    steps = []
    for it in range(iterations):
        if report is not None:
            report(it / iterations, "colour transfer")
        basis, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        if it == 0:
            basis = np.eye(3)  # the first pass aligns the perceptual axes themselves
        basis = basis.astype(np.float32)
        # the source's quantiles from at most ~_FIT / 2 of its points (sorting is much of a step's time)
        px = np.sort(basis.T @ x[:, ::max(1, -(-x.shape[1] // (_FIT // 2)))], axis=1)
        pt = np.sort(basis.T @ tgt, axis=1)
        step = _Step(basis, _sorted_quantiles(px, q), _sorted_quantiles(pt, q))
        steps.append(step)
        x = step(x)
    return steps, x


def apply_transfer(x: np.ndarray, steps) -> np.ndarray:
    """The points x (3, N) moved by `steps` (from fit_transfer)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    for step in steps:
        x = step(x)
    return x


def distribution_transfer(src: np.ndarray, tgt: np.ndarray, *, iterations: int = 24, seed: int = 0,
                          sample: int = _FIT, report=None) -> np.ndarray:
    """Move the point cloud src (N, 3) to the distribution of tgt (M, 3) by sliced 1-D transport."""
    rng = np.random.default_rng(seed)
    s = src[rng.integers(0, len(src), size=min(sample, len(src)))]
    t = tgt[rng.integers(0, len(tgt), size=min(sample, len(tgt)))]
    steps, _ = fit_transfer(s.T, t.T, iterations=iterations, rng=rng, report=report)
    return apply_transfer(np.asarray(src, np.float32).T, steps).T


def _threads(pixels: int) -> int:
    if pixels < 1_000_000:
        return 1
    import os

    from .core import get_threads

    return get_threads() or max(1, min(os.cpu_count() or 1, 8))


def _in_bands(fn, bands, pixels: int) -> None:
    """fn(*band) for each band, on threads for large pictures (numpy releases the GIL in its loops)."""
    n = min(_threads(pixels), len(bands))
    if n <= 1:
        for b in bands:
            fn(*b)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="art_ai_colour") as pool:
        for f in [pool.submit(fn, *b) for b in bands]:
            f.result()


def _up_axis(n_full: int, n_small: int, s: int, o: int):
    """Bilinear weights from a grid sampled at o, o+s, o+2s, ... to every position 0..n_full-1 (edges clamped)."""
    pos = np.clip((np.arange(n_full, dtype=np.float64) - o) / s, 0, n_small - 1)
    i0 = np.minimum(pos.astype(np.int64), max(n_small - 2, 0))
    frac = (pos - i0).astype(np.float32)
    return i0, np.minimum(i0 + 1, n_small - 1), frac


def _oklab_points(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB -> (3, N) OKLab."""
    return np.ascontiguousarray(rgb_to_oklab(rgb.reshape(-1, 3)).T)


def _region_sample(img: np.ndarray, region: np.ndarray, rng, n: int) -> np.ndarray:
    """Up to n pixels (rgb (n, 3)) of the full-size picture where `region` (H*W bool) is set, drawn at random."""
    idx = np.flatnonzero(region)
    if len(idx) > n:
        idx = idx[rng.integers(0, len(idx), size=n)]
    flat = img.reshape(-1, img.shape[2])[idx]
    return np.repeat(flat[:, :1], 3, axis=1) if img.shape[2] == 1 else flat[:, :3]


def color_transfer(content, style, *, strength: float = 1.0, preserve_color: bool = False, mask=None,
                   seed: int = 0, iterations: int = 24, regrain: bool = True, fit_mask=None, progress=None,
                   cancel=None, **_ignored) -> np.ndarray:
    """The content with the style's colour distribution; see the module docstring.

    `fit_mask`: the mapping is learned from these pixels only (a style layer's region) and applied to every pixel.
    `mask`: the mapping is learned on and applied to the masked pixels only, and the result blended by the mask.
    `regrain=False`: every pixel moved by the exact mapping, with no smoothing of the change (slower at large
    sizes: the mapping runs on every pixel).
    """
    rep = reporter(progress, cancel)
    img = as_image(content, "content", copy=False)
    sty = as_image(style, "style", copy=False)
    m = as_mask(mask, img.shape, "mask")
    h, w, c = img.shape
    rng = np.random.default_rng(seed)
    # the small copy: every s-th pixel of every s-th row, centred in its s x s cell
    s = max(1, int(np.ceil(np.sqrt(h * w / _SMALL) - 0.25)))
    o = s // 2
    small = img[o::s, o::s]
    hs, ws = small.shape[:2]
    small_rgb = np.repeat(small[:, :, :1], 3, axis=2) if c == 1 else np.ascontiguousarray(small[:, :, :3])
    lab_small = _oklab_points(small_rgb)
    # the style's colours: at most ~2 * _FIT pixels of it, transparent ones left out
    srgb_style, style_alpha = split_alpha(sty)
    k = max(1, int(np.sqrt(srgb_style.shape[0] * srgb_style.shape[1] / _FIT)))
    st = srgb_style[k // 2::k, k // 2::k].reshape(-1, 3)
    if style_alpha is not None:  # transparent style pixels carry no colour
        keep = style_alpha[k // 2::k, k // 2::k].reshape(-1) > 0.5
        if keep.any():
            st = st[keep]
    lab_style = _oklab_points(st)
    if lab_style.shape[1] > _FIT // 2:
        lab_style = lab_style[:, rng.integers(0, lab_style.shape[1], size=_FIT // 2)]
    # which pixels the mapping learns from, and which it moves
    inside = m.reshape(-1) > 0 if m is not None and (m > 0).any() else None
    fit = None
    if fit_mask is not None:
        fit = as_mask(fit_mask, img.shape, "fit_mask").reshape(-1) > 0.5
        fit = fit if fit.any() else None
    region = fit if fit is not None else inside
    if region is None:
        src = lab_small  # about _FIT pixels: the fit moves them, so they need no second pass
    else:
        src = _oklab_points(_region_sample(img, region, rng, _FIT))
    if preserve_color:
        q = np.linspace(0, 1, 1024)
        l_src = _sorted_quantiles(np.sort(src[0]), q) + np.arange(1024) * 1e-7
        l_tgt = _sorted_quantiles(np.sort(lab_style[0]), q)
        moved = lab_small.copy()
        moved[0] = np.interp(lab_small[0], l_src, l_tgt)
    else:
        steps, fitted = fit_transfer(src, lab_style, iterations=iterations, rng=rng, report=rep.sub(0, 0.8))
        moved = fitted if src is lab_small else apply_transfer(lab_small, steps)
    if not regrain:
        rep(0.85, "colour transfer")
        return _exact_everywhere(img, m, inside, fit, strength, preserve_color,
                                 steps if not preserve_color else (l_src, l_tgt), rep)
    rep(0.85, "regrain")
    change = oklab_to_rgb(moved.T).reshape(hs, ws, 3) - small_rgb  # the colour change on the small copy
    if inside is not None and fit is None:  # learned on the masked pixels, moved only there
        change *= (inside.reshape(h, w)[o::s, o::s] > 0)[:, :, None]
    guide = small_rgb @ np.array(_LUMA, np.float32)
    r = max(1, int(max(2, int(round(min(h, w) / 128))) / s))  # the full-size radius, on the small grid
    coef = _guided_coefficients(guide, change, r, 1e-4) * np.float32(np.clip(strength, 0.0, 1.0))
    out = _full_size(img, coef, s, o, m)
    rep(1.0, "done")
    return out


def _guided_coefficients(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter as its smoothed linear coefficients (H, W, 2C): src ~ a * guide + b."""
    g = guide[:, :, None]
    mean_g = box_filter(g, r)
    mean_s = box_filter(src, r)
    cov = box_filter(g * src, r) - mean_g * mean_s
    var = box_filter(g * g, r) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_s - a * mean_g
    return np.concatenate([box_filter(a, r), box_filter(b, r)], axis=2).astype(np.float32)


def _full_size(img: np.ndarray, coef: np.ndarray, s: int, o: int, m) -> np.ndarray:
    """img + (a * luma + b) [* mask] at every pixel, clipped; a, b brought up bilinearly from the small grid.

    a and b are first brought to full width on the small grid's rows (a small array); the full rows between two
    of them are then lerps of two such rows with one weight per row, computed on bands of s rows with the three
    channels interleaved along the row (long inner loops, no per-pixel gather).
    """
    h, w, c = img.shape
    hs = coef.shape[0]
    x0, x1, wx = _up_axis(w, coef.shape[1], s, o)
    # column indices and weights for rows with the three channels interleaved, as the pixels are
    j0, j1 = (3 * x0[:, None] + np.arange(3)).reshape(-1), (3 * x1[:, None] + np.arange(3)).reshape(-1)
    w3 = np.repeat(wx, 3)

    def full_width(half: np.ndarray) -> np.ndarray:  # (hs, ws, 3) -> (hs, 3w)
        flat = np.ascontiguousarray(half).reshape(hs, -1)
        lo = flat[:, j0]
        lo += (flat[:, j1] - lo) * w3
        return lo

    ca, cb = full_width(coef[:, :, :3]), full_width(coef[:, :, 3:])  # a and b on the small grid's rows
    da, db = np.diff(ca, axis=0), np.diff(cb, axis=0)
    luma3 = np.repeat(np.array(_LUMA, np.float32)[:, None], 3, axis=1)  # rgb @ luma3: the luma in each channel
    out = np.empty((h, w, c), np.float32)
    # bands: the rows before the first small row, between each two small rows, after the last one
    edges = [0] + [min(h, o + k * s) for k in range(hs)] + [h]
    bands = [(edges[i], edges[i + 1], i - 1) for i in range(len(edges) - 1) if edges[i + 1] > edges[i]]

    def band(y0: int, y1: int, k: int) -> None:
        n = y1 - y0
        px = img[y0:y1]
        rgb = np.repeat(px, 3, axis=2) if c == 1 else np.ascontiguousarray(px[:, :, :3])
        if 0 <= k < hs - 1:
            t = ((np.arange(y0, y1, dtype=np.float32) - (o + k * s)) / s)[:, None]
            A = np.multiply(t, da[k])
            A += ca[k]
            B = np.multiply(t, db[k])
            B += cb[k]
        else:  # above the first or below the last small row: clamped
            k = min(max(k, 0), hs - 1)
            A = np.broadcast_to(ca[k], (n, w * 3)).copy()
            B = cb[k]
        A *= (rgb.reshape(n * w, 3) @ luma3).reshape(n, w * 3)
        A += B
        if m is not None:
            A *= np.repeat(m[y0:y1], 3, axis=1)
        A += rgb.reshape(n, w * 3)
        np.clip(A, 0.0, 1.0, out=A)
        res = A.reshape(n, w, 3)
        if c == 1:
            out[y0:y1, :, 0] = luminance(res)
        else:
            out[y0:y1, :, :3] = res
            if c == 4:
                out[y0:y1, :, 3] = px[:, :, 3]  # alpha passes through
        if m is not None:  # exactly the original where the mask is 0
            zero = m[y0:y1] <= 0
            out[y0:y1][zero] = px[zero]

    _in_bands(band, bands, h * w)
    return out


def _exact_everywhere(img, m, inside, fit, strength, preserve_color, mapping, rep) -> np.ndarray:
    """regrain=False: every pixel through the mapping itself, block by block (slower at large sizes)."""
    h, w, c = img.shape
    n = h * w
    flat = img.reshape(n, c)
    s = float(np.clip(strength, 0.0, 1.0))
    mflat = m.reshape(-1) if m is not None else None
    out = np.empty((n, c), np.float32)
    only_inside = inside is not None and fit is None

    def block(a: int, b: int) -> None:
        sl = slice(a * w, b * w)
        rgb = np.repeat(flat[sl], 3, axis=1) if c == 1 else flat[sl, :3]
        lab = _oklab_points(rgb)
        if preserve_color:
            lab[0] = np.interp(lab[0], *mapping)
        else:
            lab = apply_transfer(lab, mapping)
        res = rgb + (oklab_to_rgb(lab.T) - rgb) * s
        if only_inside:
            res = np.where(inside[sl, None], res, rgb)
        if mflat is not None:
            res = blend_masked(rgb[:, None], res[:, None], mflat[sl, None])[:, 0]
        res = np.clip(res, 0.0, 1.0)
        if c == 1:
            out[sl, 0] = luminance(res)
        else:
            out[sl, :3] = res
            if c == 4:
                out[sl, 3] = flat[sl, 3]
        if mflat is not None:  # exactly the original where the mask is 0
            zero = mflat[sl] <= 0
            out[sl][zero] = flat[sl][zero]

    rows = max(1, 65_536 // w)
    _in_bands(block, [(y, min(h, y + rows)) for y in range(0, h, rows)], n)
    rep(1.0, "done")
    return out.reshape(h, w, c)
