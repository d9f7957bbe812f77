"""Style layers: a style per region of a render (object, collection, material, everything else), edges kept from the
depth and normal passes, stroke size by depth.

Each layer is its own picture. Its region's colours are "unmixed": pixels the layer covers fully are kept, every
other pixel of its box (the other objects, and the anti-aliased edge pixels that mix in their colours) is filled from
the region's own pixels by a push-pull fill, so a network sees the region alone (its strokes and colours cannot come
from another layer's object) and colour transfer fits the region's statistics only. The stylized layer pictures are
then composited by coverage: out = sum(m_i * S_i) + rest * U, where U is the unmixed unstyled render. So an
anti-aliased edge mixes the two styles by coverage, with no halo of the other object's colour, and a pixel no layer
covers is exactly as rendered (Gatys et al. 2017, spatial control; Ghiasi et al. 2017 for the network).

`keep_edges` re-draws the render's depth and normal discontinuities (silhouettes and creases): in a thin band around
them each stylized pixel is replaced, by that amount, with a joint-bilateral average of stylized pixels on its own
side of the edge (same depth and facing), taken from outside the band, so a stroke that ran across the outline is cut
back to it. `depth_scale` paints far parts with smaller strokes, as perspective shrinks the scene's own textures
(Liu et al. 2017): a layer is stylized at a few stroke sizes in proportion to its depth range, blended by log depth.
"""

from __future__ import annotations

import numpy as np

from .. import methods as _methods
from ..core import as_image, merge_alpha, reporter, split_alpha, unit_result
from ..errors import InputError
from ..imageio import image_or_path

_LAYER_KEYS = ("mask", "style", "method", "strength", "preserve_color", "name")
FAR = 1e6  # depths at or above this (Blender's background: 1e10) count as "infinitely far"
DEPTH_METHODS = ("arbitrary", "gatys")


# ---------------------------------------------------------------------------------------------
# Push-pull fill: unknown pixels from the known ones, coarse to fine


def _down(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[:2]
    ph, pw = h % 2, w % 2
    if ph or pw:
        x = np.pad(x, ((0, ph), (0, pw)) + ((0, 0),) * (x.ndim - 2), mode="edge")
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def _up(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear 2x (pixel centres), cropped to (h, w)."""
    p = np.pad(x, ((1, 1), (1, 1)) + ((0, 0),) * (x.ndim - 2), mode="edge")
    c = p[1:-1, 1:-1]
    rows = [0.75 * c + 0.25 * p[:-2, 1:-1], 0.75 * c + 0.25 * p[2:, 1:-1]]
    out = np.empty((2 * x.shape[0], 2 * x.shape[1]) + x.shape[2:], np.float32)
    for k, r in enumerate(rows):
        rp = np.pad(r, ((0, 0), (1, 1)) + ((0, 0),) * (x.ndim - 2), mode="edge")
        out[k::2, 0::2] = 0.75 * r + 0.25 * rp[:, :-2]
        out[k::2, 1::2] = 0.75 * r + 0.25 * rp[:, 2:]
    return out[:h, :w]


def fill(img: np.ndarray, known: np.ndarray) -> np.ndarray:
    """`img` where `known` is 1, smoothly filled from the known pixels elsewhere (push-pull; numpy only)."""
    w = np.clip(known.astype(np.float32), 0.0, 1.0)
    if w.max() <= 0:
        return img.astype(np.float32, copy=True)
    if w.min() >= 1:
        return img.astype(np.float32, copy=True)
    wx = img.astype(np.float32) * w[:, :, None]
    levels = []
    cur_wx, cur_w = wx, w
    while min(cur_w.shape[:2]) > 1 and cur_w.min() <= 0:
        levels.append((cur_wx, cur_w))
        cur_wx, cur_w = _down(cur_wx), _down(cur_w)
    est = cur_wx / np.maximum(cur_w, 1e-12)[:, :, None]
    for lwx, lw in reversed(levels):
        h, ww = lw.shape
        up = _up(est, h, ww)
        a = np.clip(lw * 4.0, 0.0, 1.0)[:, :, None]  # a level's own estimate where it has enough weight
        est = a * (lwx / np.maximum(lw, 1e-12)[:, :, None]) + (1 - a) * up
    kw = w[:, :, None]
    return (img * kw + est * (1 - kw)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Edges from depth and normal


def _shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """x[y + dy, x + dx], edge-clamped."""
    h, w = x.shape[:2]
    ys = np.clip(np.arange(h) + dy, 0, h - 1)
    xs = np.clip(np.arange(w) + dx, 0, w - 1)
    return x[ys][:, xs]


def _inverse_depth(depth: np.ndarray) -> np.ndarray:
    d = np.where(np.isfinite(depth) & (depth > 0), depth, FAR)
    return (1.0 / np.clip(d, 1e-6, FAR)).astype(np.float32)


def edge_map(depth=None, normal=None, *, crease_degrees: float = 30.0) -> np.ndarray:
    """(H, W) in [0, 1]: silhouettes (breaks in 1/depth, which is affine across a plane) and creases (normals turning
    by more than about `crease_degrees` between neighbours)."""
    e = None
    if depth is not None:
        z = _inverse_depth(np.asarray(depth, np.float32))
        scale = np.maximum(z, 1e-9)
        d = np.zeros_like(z)
        for dy, dx in ((0, 1), (1, 0)):
            second = np.abs(_shift(z, dy, dx) - 2 * z + _shift(z, -dy, -dx)) / scale
            d = np.maximum(d, second)
        e = np.clip((d - 0.02) / 0.06, 0.0, 1.0)
    if normal is not None:
        n = np.asarray(normal, np.float32)[:, :, :3]
        n = n / np.maximum(np.linalg.norm(n, axis=2, keepdims=True), 1e-6)
        c = np.cos(np.radians(crease_degrees))
        en = np.zeros(n.shape[:2], np.float32)
        for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            dot = np.sum(n * _shift(n, dy, dx), axis=2)
            en = np.maximum(en, np.clip((1.0 - dot) / (1.0 - c) - 0.5, 0.0, 1.0))
        e = en if e is None else np.maximum(e, en)
    if e is None:
        raise InputError("keep_edges: needs the render's depth or normal pass (depth=..., normal=...)")
    return e.astype(np.float32)


def _dilate(x: np.ndarray, r: int) -> np.ndarray:
    out = x.copy()
    for _ in range(r):
        out = np.maximum.reduce([out, _shift(out, 0, 1), _shift(out, 0, -1), _shift(out, 1, 0), _shift(out, -1, 0)])
    return out


def redraw_edges(styled: np.ndarray, amount: float, *, depth=None, normal=None,
                 radius: int | None = None) -> np.ndarray:
    """`styled` (H, W, 3) with the geometry's edges re-drawn sharp and in place (see the module docstring)."""
    if amount <= 0:
        return styled
    h, w = styled.shape[:2]
    e = edge_map(depth, normal)
    r = radius or max(2, int(round(min(h, w) / 200)))
    band = np.clip(_dilate(e, r), 0.0, 1.0)  # where strokes may have crossed an outline
    near = _dilate(e, max(1, r // 2))  # too close to the outline to be trusted as a source
    ys, xs = np.nonzero(band > 0)
    if len(ys) == 0:
        return styled
    z = _inverse_depth(np.asarray(depth, np.float32)) if depth is not None else None
    n = None
    if normal is not None:
        n = np.asarray(normal, np.float32)[:, :, :3]
        n = n / np.maximum(np.linalg.norm(n, axis=2, keepdims=True), 1e-6)
    acc = np.zeros((len(ys), styled.shape[2]), np.float64)
    wsum = np.zeros(len(ys), np.float64)
    R = 2 * r + 1
    sigma_s = max(1.0, R / 2.0)
    step = max(1, R // 3)  # a sparse window: the weights are smooth, so every step-th offset is enough
    offsets = range(-(R // step) * step, R + 1, step)
    for dy in offsets:
        for dx in offsets:
            qy, qx = np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)
            wt = np.exp(-(dy * dy + dx * dx) / (2 * sigma_s ** 2)) * (0.02 + (1.0 - near[qy, qx]))
            if z is not None:
                zp, zq = z[ys, xs], z[qy, qx]
                rel = (zq - zp) / np.maximum(np.maximum(zp, zq), 1e-9)
                wt = wt * np.exp(-(rel / 0.03) ** 2)
            if n is not None:
                dot = np.sum(n[ys, xs] * n[qy, qx], axis=1)
                wt = wt * np.exp(-((1.0 - dot) / 0.05) ** 2)
            acc += wt[:, None] * styled[qy, qx]
            wsum += wt
    ok = wsum > 1e-8
    out = styled.copy()
    k = np.clip(float(amount) * band[ys, xs], 0.0, 1.0)[:, None]
    redrawn = np.where(ok[:, None], acc / np.maximum(wsum, 1e-12)[:, None], styled[ys, xs])
    out[ys, xs] = (1 - k) * styled[ys, xs] + k * redrawn
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# One layer


def _check_layers(layers, shape) -> list[dict]:
    if not isinstance(layers, (list, tuple)) or not layers:
        raise InputError("layers: expected a list of layers (dicts with mask, style, method, strength)")
    out = []
    h, w = shape[:2]
    rest = 0
    for i, layer in enumerate(layers):
        what = f"layer {i + 1}" + (f" ({layer.get('name')})" if isinstance(layer, dict) and layer.get("name") else "")
        if not isinstance(layer, dict):
            raise InputError(f"{what}: expected a dict with mask, style, method, strength")
        if layer.get("style") is None and not layer.get("model"):
            raise InputError(f"{what}: no style image (key 'style')")
        mask = layer.get("mask")
        if mask is None:
            rest += 1
            m = None
        else:
            m = np.asarray(mask, dtype=np.float32)
            if m.ndim == 3 and m.shape[2] == 1:
                m = m[:, :, 0]
            if m.shape != (h, w):
                raise InputError(f"{what}: mask is {m.shape[1] if m.ndim > 1 else '?'}x{m.shape[0]}, the picture "
                                 f"{w}x{h}; give a coverage mask of the picture's size")
            if not np.isfinite(m).all():
                raise InputError(f"{what}: mask holds NaN or infinite values")
            m = np.clip(m, 0.0, 1.0)
        method = str(layer.get("method") or "auto").lower()
        options = {k: v for k, v in layer.items() if k not in _LAYER_KEYS}
        _methods.check("stylize", method, dict(options))  # unknown methods and options refused before any work
        strength = _methods.check_number(layer.get("strength", 1.0), f"{what}: strength", 0.0, 1.0)
        out.append({"mask": m, "style": layer.get("style"), "method": method, "strength": strength,
                    "preserve_color": bool(layer.get("preserve_color", False)), "options": options, "what": what})
    if rest > 1:
        raise InputError("layers: more than one layer for everything else (mask None); keep one")
    return out


def _box_of(m: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
    if len(rows) == 0:
        return None
    h, w = m.shape
    return (slice(max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)),
            slice(max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)))


def _core(m: np.ndarray) -> np.ndarray:
    """The pixels a layer covers fully (or nearly: thin things never reach 1)."""
    top = float(m.max())
    return (m >= 0.99 * top).astype(np.float32)


def _mirror_tile(style: np.ndarray, s: float) -> np.ndarray:
    """The style at `s` times its feature size, same pixel count (mirrored tiles, for scales < 1)."""
    from ._util import resize

    if s >= 0.999:
        return style
    n = int(np.ceil(1.0 / s))
    row = np.concatenate([style if k % 2 == 0 else style[:, ::-1] for k in range(n)], axis=1)
    big = np.concatenate([row if k % 2 == 0 else row[::-1] for k in range(n)], axis=0)
    h, w = style.shape[:2]
    ch, cw = int(round(h / s)), int(round(w / s))
    return resize(np.ascontiguousarray(big[:ch, :cw]), h, w)


def _depth_bands(d: np.ndarray, core: np.ndarray) -> list[float]:
    """Stroke scales (1 for the near part, smaller for far) for the layer's depth range, at most 4."""
    vals = d[(core > 0) & (d < FAR)]
    if vals.size < 16:
        return [1.0]
    near, far = np.percentile(vals, [5, 95])
    ratio = float(far / max(near, 1e-6))
    if ratio < 1.25:
        return [1.0]
    k = int(np.clip(np.ceil(np.log2(ratio) / 0.8) + 1, 2, 4))
    return [float(x) for x in np.exp(-np.linspace(0.0, np.log(min(ratio, 5.0)), k))]


def _band_weights(d: np.ndarray, scales: list[float], near: float) -> np.ndarray:
    """Per-pixel weights (K, h, w) of each stroke scale: hat functions on log depth (a partition of unity)."""
    want = np.log(np.clip(near / np.clip(d, 1e-6, FAR), 1e-6, 1.0))  # log of the scale this depth asks for
    centres = np.log(np.asarray(scales))
    want = np.clip(want, centres[-1], centres[0])
    ws = np.zeros((len(scales),) + d.shape, np.float32)
    for k in range(len(scales)):
        if k > 0:
            span = centres[k - 1] - centres[k]
            ws[k] += np.clip(1 - (want - centres[k]) / span, 0, 1) * (want >= centres[k]) * (want <= centres[k - 1])
        if k < len(scales) - 1:
            span = centres[k] - centres[k + 1]
            ws[k] += np.clip(1 - (centres[k] - want) / span, 0, 1) * (want < centres[k]) * (want > centres[k + 1])
    ws[0][want >= centres[0]] = 1.0
    ws[-1][want <= centres[-1]] = 1.0
    return ws / np.maximum(ws.sum(axis=0), 1e-6)


def _stylize_region(picture: np.ndarray, core: np.ndarray, layer: dict, *, scale: float, device, rep, info):
    """One stylized copy of a layer's unmixed picture at one stroke scale."""
    from ..color import color_transfer
    from .engine import _styles, stylize

    method = layer["method"]
    styles = _styles(layer["style"]) if layer["style"] is not None else []
    if method == "color":
        return color_transfer(picture, styles[0], strength=layer["strength"], preserve_color=layer["preserve_color"],
                              fit_mask=core, progress=rep, **{k: v for k, v in layer["options"].items()
                                                              if k in ("seed", "iterations", "regrain")})
    opts = dict(layer["options"])
    work = picture
    h, w = picture.shape[:2]
    if scale < 0.999:
        if method == "gatys":
            opts["style_scale"] = float(opts.get("style_scale", 1.0)) * scale
        elif method == "arbitrary":
            from ._util import resize
            from .arbitrary import BASE_SIDE

            base = float(opts.get("style_scale", 1.0))
            side = min(max(h, w), BASE_SIDE / base) / scale  # the network's long side for this stroke size
            f = max(1.0, side / max(h, w))
            if f > 1.0:
                work = resize(picture, int(round(h * f)), int(round(w * f)))
            opts["style_scale"] = BASE_SIDE / side
        else:
            styles = [_mirror_tile(s, scale) for s in styles]
    sub: dict = {}
    out = stylize(work, styles if styles else None, method=method, strength=layer["strength"],
                  preserve_color=layer["preserve_color"], device=device, progress=rep, info=sub, **opts)
    if out.shape[:2] != (h, w):
        from ._util import resize

        out = resize(out, h, w)
    info.setdefault("methods", []).append(sub.get("method", method))
    if sub.get("note"):
        info.setdefault("notes", []).append(sub["note"])
    return out[:, :, :3]


def _stylize_layer(rgb: np.ndarray, layer: dict, m: np.ndarray, *, depth, depth_scale: bool, device, rep,
                   info) -> tuple[np.ndarray, tuple[slice, slice]] | None:
    h, w = m.shape
    margin = max(16, int(round(0.06 * max(h, w))))
    box = _box_of(m > 1e-4, margin)
    if box is None:
        return None
    crop_m = m[box]
    core = _core(crop_m)
    picture = fill(rgb[box], core)
    scales = [1.0]
    if depth_scale and depth is not None:
        if layer["method"] in DEPTH_METHODS or layer["method"] == "auto":
            scales = _depth_bands(depth[box], core)
        else:
            info.setdefault("notes", []).append(f"{layer['what']}: depth scale works with arbitrary and gatys; "
                                                f"{layer['method']} keeps one stroke size")
    outs = []
    for k, s in enumerate(scales):
        outs.append(_stylize_region(picture, core, layer, scale=s, device=device,
                                    rep=rep.sub(k / len(scales), (k + 1) / len(scales)), info=info))
    if len(outs) == 1:
        return outs[0], box
    d = depth[box]
    vals = d[(core > 0) & (d < FAR)]
    near = float(np.percentile(vals, 5))
    wts = _band_weights(d, scales, near)
    return np.sum([wk[:, :, None] * o for wk, o in zip(wts, outs)], axis=0).astype(np.float32), box


# ---------------------------------------------------------------------------------------------
# The API


def stylize_layers(content, layers, *, keep_edges: float = 0.0, depth=None, normal=None, depth_scale: bool = False,
                   device: str = "auto", progress=None, cancel=None, info: dict | None = None) -> np.ndarray:
    """A render stylized region by region; see the module docstring.

    `layers`: list of dicts: `mask` (H, W) coverage in [0, 1] (None: everything no other layer covers), `style` (an
    image or a path), `method` (the stylize methods), `strength` (0..1), `preserve_color`, and that method's options.
    `depth` (H, W) camera distance and `normal` (H, W, 3) from the render's passes drive `keep_edges` (0..1) and
    `depth_scale`. Pixels no layer covers come back exactly as given; alpha passes through.
    """
    rep = reporter(progress, cancel)
    info = info if info is not None else {}
    img = as_image(content, "content")
    rgb, alpha = split_alpha(img)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    h, w = rgb.shape[:2]
    checked = _check_layers(layers, img.shape)
    keep = _methods.check_number(keep_edges, "keep_edges", 0.0, 1.0)
    for key, arr, nd in (("depth", depth, 2), ("normal", normal, 3)):
        if arr is not None:
            a = np.asarray(arr)
            if a.shape[:2] != (h, w) or a.ndim < nd:
                raise InputError(f"{key}: expected the picture's size {w}x{h}"
                                 + (" with 3 channels" if nd == 3 else "") + f", got shape {a.shape}")
    if depth is not None:
        depth = np.asarray(depth, np.float32)
        if depth.ndim == 3:
            depth = depth[:, :, 0]
    if depth_scale and depth is None:
        raise InputError("depth_scale: needs the render's depth pass (depth=...)")
    for layer in checked:
        if isinstance(layer["style"], (str, bytes)) or hasattr(layer["style"], "__fspath__"):
            layer["style"] = image_or_path(layer["style"], f"{layer['what']}: style")
    masks = [layer["mask"] for layer in checked if layer["mask"] is not None]
    total = np.sum(masks, axis=0) if masks else np.zeros((h, w), np.float32)
    norm = np.maximum(total, 1.0)  # overlapping layers share a pixel in proportion
    rest = np.clip(1.0 - total, 0.0, 1.0)
    coverage = []
    for layer in checked:
        if layer["mask"] is None:
            coverage.append(rest)
        else:
            coverage.append(layer["mask"] / norm)
    if any(layer["mask"] is None for layer in checked):
        rest = np.zeros_like(rest)
    out = np.zeros_like(rgb)
    n = len(checked)
    for i, (layer, m) in enumerate(zip(checked, coverage)):
        part = rep.sub(0.02 + 0.9 * i / n, 0.02 + 0.9 * (i + 1) / n)
        part(0.0, f"{layer['what']}: {layer['method']}")
        got = _stylize_layer(rgb, layer, m, depth=depth, depth_scale=depth_scale, device=device, rep=part,
                             info=info)
        if got is None:
            info.setdefault("notes", []).append(f"{layer['what']}: covers no pixel of this frame")
            continue
        styled, box = got
        out[box] += m[box][:, :, None] * styled
    if rest.max() > 0:
        # untargeted pixels: as rendered where nothing else covers them, unmixed at the edges of covered ones
        full = rest >= 0.999
        plain = fill(rgb, full.astype(np.float32)) if not full.all() else rgb
        out += rest[:, :, None] * np.where(full[:, :, None], rgb, plain)
    if keep > 0:
        rep(0.93, "keep edges")
        kept = redraw_edges(out, keep, depth=depth, normal=normal)
        untouched = rest >= 0.999  # pixels no layer covers stay exactly as rendered
        out = np.where(untouched[:, :, None], rgb, kept)
    out = unit_result(out, "stylize layers")
    np.copyto(out, rgb, where=(total <= 0)[:, :, None] & (rest >= 0.999)[:, :, None])
    info["method"] = ", ".join(dict.fromkeys(info.get("methods", []))) or "none"
    info["note"] = "; ".join(dict.fromkeys(info.get("notes", [])))
    rep(1.0, "done")
    if img.shape[2] == 1:
        from ..core import luminance

        return luminance(out)[:, :, None].astype(np.float32)
    return merge_alpha(out, alpha, like=img)



def stylize_layers_sequence(content, layers, previous_state=None, *, keep_edges: float = 0.0, depth=None,
                            normal=None, depth_scale: bool = False, flow=None, temporal_weight: float = 0.7,
                            device: str = "auto", progress=None, cancel=None, info: dict | None = None):
    """One frame of an animation stylized by layers, kept coherent with the frame before; returns (result, state)
    like `stylize_sequence` (whose motion compensation it uses, with the renderer's motion as `flow`)."""
    from .temporal import stylize_sequence

    def by_layers(img, _style, *, device="auto", progress=None, cancel=None, **_ignored):
        return stylize_layers(img, layers, keep_edges=keep_edges, depth=depth, normal=normal, depth_scale=depth_scale,
                              device=device, progress=progress, cancel=cancel, info=info)

    by_layers.__name__ = "layers"
    return stylize_sequence(content, None, previous_state, method=by_layers, device=device, progress=progress,
                            cancel=cancel, flow=flow, temporal_weight=temporal_weight)
