"""Gatys et al. style transfer: optimise the image itself against content and Gram style losses.

Coarse to fine: the image is solved at a small size first (where the style's large-scale
structure fits the network's view), then upsampled and refined at each finer level, so large
outputs keep large-scale structure. Losses are normalised per layer (relative error) so the
balance does not depend on the encoder's feature magnitudes; `strength` sets content vs style.
"""

from __future__ import annotations

import numpy as np

from ..core import require_torch
from ._util import resize, to_numpy, to_tensor


def gram(f):
    """Channel co-occurrence (N, C, C) averaged over positions."""
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (h * w)


def _features(enc, x, style_layers, content_layers, pyramid: int):
    """Style features at `pyramid` scales (x, x/2, x/4, ...), keyed "layer@k", plus content features at scale 0.

    Matching Gram matrices at several scales of the same image lets a shallow encoder see large
    structures (brush marks, cells) as well as fine grain (Snelgrove 2017).
    """
    F = require_torch().nn.functional
    out = {}
    for k in range(pyramid):
        xk = x if k == 0 else F.avg_pool2d(x, 2 ** k)
        if min(xk.shape[2:]) < getattr(enc, "min_side", 16):
            break
        feats = enc(xk, list(style_layers) + (list(content_layers) if k == 0 else []))
        for name in style_layers:
            out[f"{name}@{k}"] = feats[name]
        if k == 0:
            for name in content_layers:
                out[name] = feats[name]
    return out


def _levels(h: int, w: int, coarsest: int, max_levels: int, min_side: int = 16):
    """Sizes from coarse to fine, each twice the previous, the last one (h, w); none thinner than min_side."""
    sizes = [(h, w)]
    while len(sizes) < max_levels and max(sizes[-1]) // 2 >= coarsest and min(sizes[-1]) // 2 >= min_side:
        ph, pw = sizes[-1]
        sizes.append((max(1, ph // 2), max(1, pw // 2)))
    return sizes[::-1]


class _LevelReport:
    def __init__(self, rep, done, total, label):
        self.rep, self.done, self.total, self.label = rep, done, total, label
        self.it = 0

    def __call__(self, n_steps):
        if self.rep is not None:
            self.rep(min(self.done + self.it, self.total) / self.total, f"{self.label} step {self.it + 1}/{n_steps}")
        self.it += 1


def _optimise(start, enc, style_layers, content_layers, pyramid, targets, gram_keys, s_norm, c_feats, c_norm, cw,
              tv_weight, optimizer, lr, n_steps, report):
    """Optimise the image from `start` for n_steps loss evaluations; returns the image tensor."""
    torch = require_torch()
    x = start.clone().requires_grad_(True)

    def closure():
        report(n_steps)
        opt.zero_grad(set_to_none=True)
        feats = _features(enc, x, style_layers, content_layers, pyramid)
        loss_s = sum((gram(feats[n]) - targets[n]).pow(2).sum() / s_norm[n] for n in gram_keys) / len(gram_keys)
        loss_c = sum((feats[n] - c_feats[n]).pow(2).sum() / c_norm[n] for n in content_layers)
        tv = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).mean()
        # values outside [0, 1] are pulled back softly (L-BFGS needs a smooth objective, not a clamp)
        out_of_range = (x - x.clamp(0, 1)).pow(2).mean()
        loss = loss_s + cw * loss_c + tv_weight * tv + 10.0 * out_of_range
        loss.backward()
        return loss

    if optimizer == "lbfgs":
        # the losses are relative errors with small gradients: a line search finds the step length
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=n_steps, max_eval=n_steps, history_size=20,
                                tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
        opt.step(closure)
    else:
        opt = torch.optim.Adam([x], lr=lr)
        for _ in range(n_steps):
            opt.step(closure)
            with torch.no_grad():
                x.clamp_(0, 1)
    return x.detach().clamp(0, 1)


def _optimise_tiled(start, content_t, enc, style_layers, content_layers, pyramid, targets, gram_keys, s_norm, cw,
                    tv_weight, optimizer, lr, n_steps, tile, overlap, rep, done, total, label):
    """A level too large for the memory budget: optimise overlapping tiles against the same global
    style targets, each starting from the canvas as its neighbours left it, cross-faded in the overlaps."""
    from .tiles import _ramp, _starts

    torch = require_torch()
    _, _, h, w = start.shape
    tile = max(64, min(int(tile), max(h, w)))
    overlap = int(min(overlap, tile // 4))
    margin = overlap
    canvas = start.clone()
    acc = torch.zeros_like(start)
    weight = torch.zeros((1, 1, h, w), dtype=start.dtype, device=start.device)
    ys, xs = _starts(h, tile, overlap), _starts(w, tile, overlap)
    n_tiles = len(ys) * len(xs)
    k = 0
    for y0 in ys:
        th = min(tile, h)
        wy = _ramp(th, overlap, y0 == 0, y0 + th >= h)
        for x0 in xs:
            tw = min(tile, w)
            wx = _ramp(tw, overlap, x0 == 0, x0 + tw >= w)
            ya, xa = max(0, y0 - margin), max(0, x0 - margin)
            yb, xb = min(h, y0 + th + margin), min(w, x0 + tw + margin)
            with torch.no_grad():
                c_feats = enc(content_t[:, :, ya:yb, xa:xb], content_layers)
                c_norm = {n: c_feats[n].pow(2).sum().clamp_min(1e-12) for n in content_layers}
            report = _LevelReport(rep, done * n_tiles + k * n_steps, total * n_tiles, f"{label} tile {k + 1}/{n_tiles}")
            crop = _optimise(canvas[:, :, ya:yb, xa:xb], enc, style_layers, content_layers, pyramid, targets,
                             gram_keys, s_norm, c_feats, c_norm, cw, tv_weight, optimizer, lr, n_steps, report)
            core = crop[:, :, y0 - ya:y0 - ya + th, x0 - xa:x0 - xa + tw]
            wt = torch.from_numpy(np.outer(wy, wx)).to(start.device, start.dtype)[None, None]
            acc[:, :, y0:y0 + th, x0:x0 + tw] += core * wt
            weight[:, :, y0:y0 + th, x0:x0 + tw] += wt
            canvas[:, :, ya:yb, xa:xb] = crop
            k += 1
    return (acc / weight.clamp_min(1e-8)).clamp(0, 1)


def gatys(content: np.ndarray, styles: list, *, style_weights=None, strength: float = 1.0, steps: int = 200,
          seed: int = 0, device=None, encoder=None, lr: float = 0.04, style_scale: float = 1.0,
          coarsest: int = 128, max_levels: int = 3, tv_weight: float = 1e-4, content_weight: float | None = None,
          init="content", pyramid: int | None = None, optimizer: str = "lbfgs", memory_mb: float = 4096,
          tile: int | None = None, overlap: int = 32, rep=None) -> np.ndarray:
    """content (H, W, 3), styles a list of (h, w, 3) -> stylized (H, W, 3); `encoder` from encoders.py.

    `init` is "content", "noise" or an (H, W, 3) image to start from (only the finest level then runs).
    `optimizer` "lbfgs" (default, the classic choice: fewer evaluations for the same quality) or "adam".
    """
    if optimizer not in ("lbfgs", "adam"):
        from ..errors import InputError

        raise InputError(f"optimizer: use 'lbfgs' or 'adam', not {optimizer!r}")
    from ..validate import check_steps

    check_steps(steps)
    min_side = int(getattr(encoder, "min_side", 16))
    for what, img in [("content", content)] + [("style" if len(styles) == 1 else f"style {i + 1}", st)
                                                for i, st in enumerate(styles)]:
        if min(img.shape[:2]) < min_side:
            from ..errors import InputError

            raise InputError(f"{what}: {img.shape[1]}x{img.shape[0]} pixels is too small for gatys, which needs at "
                             f"least {min_side} pixels on each side; give a larger image, or use method color")
    torch = require_torch("gatys style transfer")
    s = float(np.clip(strength, 0.0, 1.0))
    if s <= 0.0:
        return content.copy()
    weights = np.asarray(style_weights if style_weights is not None else [1.0] * len(styles), dtype=np.float64)
    weights = weights / weights.sum()
    # content weight grows as strength falls: s=1 is the tuned balance, s->0 is the content itself
    if content_weight is None:
        content_weight = getattr(encoder, "content_weight", 0.05)
    cw = content_weight / (s * s)
    h, w = content.shape[:2]
    start_image = init if isinstance(init, np.ndarray) else None
    # a given start image (e.g. the previous frame warped by motion) already has the composition
    sizes = [(h, w)] if start_image is not None else _levels(h, w, coarsest, max_levels, min_side)
    # more steps where they are cheap: the coarse levels set the composition
    shares = np.array([2.0 ** (len(sizes) - 1 - i) for i in range(len(sizes))]) ** 0.5
    level_steps = np.maximum(1, np.round(steps * shares / shares.sum())).astype(int)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    enc = encoder.to(device)
    pyramid = int(pyramid or getattr(encoder, "pyramid", 1))
    style_layers = list(encoder.style_layers)
    content_layers = list(encoder.content_layers)
    max_pixels = max(64 * 64, int(memory_mb * 1024 * 1024 / getattr(encoder, "bytes_per_pixel", 4096)))
    x = None
    total = int(level_steps.sum())
    done = 0
    for li, ((lh, lw), n_steps) in enumerate(zip(sizes, level_steps, strict=True)):
        c_np = resize(content, lh, lw)
        c_t = to_tensor(c_np, device)
        with torch.no_grad():
            c_feats = enc(c_t, content_layers)
            targets = {}
            for sty, wt in zip(styles, weights, strict=True):
                sh, sw = sty.shape[:2]
                scale = style_scale * np.sqrt(lh * lw / float(sh * sw))
                s_np = resize(sty, max(min_side, round(sh * scale)), max(min_side, round(sw * scale)))
                feats = _features(enc, to_tensor(s_np, device), style_layers, (), pyramid)
                for name, f in feats.items():
                    targets[name] = targets.get(name, 0.0) + float(wt) * gram(f)
            present = _features(enc, c_t, style_layers, (), pyramid)  # layers that exist at this size
            gram_keys = [k for k in targets if k in present]
            s_norm = {name: targets[name].pow(2).sum().clamp_min(1e-12) for name in gram_keys}
            c_norm = {name: c_feats[name].pow(2).sum().clamp_min(1e-12) for name in content_layers}
        if x is None and start_image is not None:
            start = to_tensor(resize(start_image[:, :, :3], lh, lw), device)
        elif x is None:
            if init == "noise":
                start = torch.rand(c_t.shape, generator=gen).to(device)
            else:
                noise = torch.randn(c_t.shape, generator=gen).to(device) * 0.02
                start = (c_t + noise).clamp(0, 1)
        else:
            start = torch.nn.functional.interpolate(x.detach(), size=(lh, lw), mode="bicubic",
                                                    align_corners=False).clamp(0, 1)
        label = f"gatys level {li + 1}/{len(sizes)}"
        tile_size = int(tile) if tile else int(np.sqrt(max_pixels))
        if lh * lw <= max_pixels and not (tile and max(lh, lw) > tile):
            x = _optimise(start, enc, style_layers, content_layers, pyramid, targets, gram_keys, s_norm, c_feats,
                          c_norm, cw, tv_weight, optimizer, lr * (0.7 ** li), int(n_steps),
                          _LevelReport(rep, done, total, label))
        else:
            x = _optimise_tiled(start, c_t, enc, style_layers, content_layers, pyramid, targets, gram_keys, s_norm,
                                cw, tv_weight, optimizer, lr * (0.7 ** li), int(n_steps), tile_size, overlap,
                                rep, done, total, label)
        done += int(n_steps)
    out = to_numpy(x)
    if s < 1.0:
        # a low strength also keeps the content's exact pixels closer (monotonic in the user's eyes)
        out = content + (out - content) * (0.5 + 0.5 * s)
    return out.astype(np.float32)
