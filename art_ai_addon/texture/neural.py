"""Gram-matrix texture synthesis (Gatys et al. 2015) on the stylize encoders, periodic so the result tiles.

- The encoder is the stylize one (`stylize.encoders.load_encoder`): VGG19 when its weights are in the model
  store, the built-in random encoder otherwise, with the same note on what is lost.
- Periodicity does not depend on the encoder's own padding: each tile of the canvas is cut out of its
  wrapped-around extension (index arrays modulo the size), so every feature sees the torus.
- Statistics are global but memory is not: the Gram matrices are summed tile by tile, and the gradient of
  the global loss is back-propagated tile by tile (exact, not an approximation), so a 2048 px texture fits a
  small GPU and shows no tile seams.
- Coarse to fine: each level is matched against the exemplar reduced by the same factor, so its features
  have the scale they will have in the final image, and a level starts from the previous one upsampled.
- Optionally (`spectrum=`) the exemplar's Welch amplitude spectrum is matched too (after Liu, Gousseau & Xia
  2016), which keeps a little more of a regular layout (brick courses, weave) that Gram matrices scramble.
"""

from __future__ import annotations

import numpy as np

from ..core import require_torch
from .periodic import fourier_resize

_MIN_LEVEL_OUT = 64  # px, smallest side of the coarsest output level
_MIN_LEVEL_EX = 48  # px, smallest side of the exemplar at the coarsest level
_MAX_LEVELS = 4


def match_histograms(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-channel sort-based histogram matching: exact colour distribution of the exemplar."""
    out = np.empty_like(img)
    for c in range(img.shape[2]):
        src = img[:, :, c].ravel()
        order = np.argsort(src, kind="stable")
        vals = np.sort(ref[:, :, c].ravel())
        idx = np.linspace(0, vals.size - 1, src.size).round().astype(np.int64)
        res = np.empty_like(src)
        res[order] = vals[idx]
        out[:, :, c] = res.reshape(img.shape[:2])
    return out


def _extension(n: int, margin: int, periodic: bool) -> np.ndarray:
    """Indices of positions -margin .. n+margin-1 wrapped (torus) or mirrored (a plain image)."""
    idx = np.arange(-margin, n + margin)
    if periodic or n == 1:
        return idx % n
    period = 2 * (n - 1)
    idx = idx % period
    return np.where(idx >= n, period - idx, idx)


def _views(x, channels: int):
    """What the encoder sees: 3-channel images (grey is repeated; alpha is a grey image of its own)."""
    if channels == 1:
        return [x.expand(-1, 3, -1, -1)]
    if channels == 4:
        return [x[:, :3], x[:, 3:4].expand(-1, 3, -1, -1)]
    if channels == 2:
        return [x[:, :1].expand(-1, 3, -1, -1), x[:, 1:2].expand(-1, 3, -1, -1)]
    return [x]


class _Statistics:
    """Gram matrices of every (view, layer) of one image, summed over tiles of at most `tile` px."""

    def __init__(self, enc, layers, channels: int, margin: int, tile: int):
        self.enc, self.layers, self.channels = enc, list(layers), channels
        self.margin, self.tile = margin, tile

    def _tiles(self, h: int, w: int):
        t = self.tile
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                yield y0, x0, min(t, h - y0), min(t, w - x0)

    def n_tiles(self, h: int, w: int) -> int:
        return len(list(self._tiles(h, w)))

    def _tile_features(self, x, y0, x0, th, tw, periodic: bool):
        """{key: (C, n) features of the tile's own positions}, computed with the tile's wrapped halo."""
        torch = require_torch()
        _, _, h, w = x.shape
        m = self.margin
        iy = torch.from_numpy(_extension(h, m, periodic)[y0:y0 + th + 2 * m]).to(x.device)
        ix = torch.from_numpy(_extension(w, m, periodic)[x0:x0 + tw + 2 * m]).to(x.device)
        crop = x.index_select(2, iy).index_select(3, ix)
        out = {}
        # raw 3x3 neighbourhoods with a constant channel: the palette's mean and covariance, alpha against
        # colour, and the pixel-scale autocovariance that keeps the result free of colour speckle
        px = torch.nn.functional.unfold(crop[:, :, m - 1:m + th + 1, m - 1:m + tw + 1], 3)[0]
        out["px"] = torch.cat([px, torch.ones_like(px[:1])], 0)
        for v, img in enumerate(_views(crop, self.channels)):
            feats = self.enc(img, self.layers)
            for name in self.layers:
                f = feats.get(name)
                if f is None or min(f.shape[2:]) < 1:
                    continue
                s = max(1, int(round(crop.shape[2] / f.shape[2])))
                r0, c0 = m // s, m // s
                r1, c1 = r0 + -(-th // s), c0 + -(-tw // s)
                f = f[0, :, r0:r1, c0:c1]
                if f.numel():
                    out[f"{v}:{name}"] = f.flatten(1)
        return out

    def grams(self, x, periodic: bool) -> dict:
        """{key: (sum of f f^T, count)} over all tiles, without gradients."""
        torch = require_torch()
        acc: dict = {}
        with torch.no_grad():
            for y0, x0, th, tw in self._tiles(x.shape[2], x.shape[3]):
                for k, f in self._tile_features(x, y0, x0, th, tw, periodic).items():
                    g, n = acc.get(k, (0.0, 0))
                    acc[k] = (g + f @ f.T, n + f.shape[1])
        return acc

    def loss_backward(self, x, targets: dict, periodic: bool, weight: float = 1.0):
        """Relative Gram error averaged over layers; its exact gradient is accumulated into x.grad per tile."""
        torch = require_torch()
        tiles = list(self._tiles(x.shape[2], x.shape[3]))
        keys = None
        if len(tiles) == 1:  # the common case: one pass with the graph
            feats = self._tile_features(x, 0, 0, x.shape[2], x.shape[3], periodic)
            keys = [k for k in feats if k in targets]
            loss = sum(((feats[k] @ feats[k].T / feats[k].shape[1] - targets[k]) ** 2).sum()
                       / (targets[k] ** 2).sum().clamp_min(1e-12) for k in keys) / max(1, len(keys))
            (loss * weight).backward()
            return float(loss.detach())
        sums = self.grams(x.detach(), periodic)
        keys = [k for k in sums if k in targets]
        coef, loss = {}, 0.0
        for k in keys:
            g, n = sums[k]
            diff = g / n - targets[k]
            norm = float((targets[k] ** 2).sum().clamp_min(1e-12))
            loss += float((diff ** 2).sum()) / norm
            # d loss / d (f f^T) for this key; the tile term <coef, f f^T> has the tile's share of the gradient
            coef[k] = (2.0 * diff / (norm * n * len(keys))).detach()
        for y0, x0, th, tw in tiles:
            feats = self._tile_features(x, y0, x0, th, tw, periodic)
            part = sum((coef[k] * (feats[k] @ feats[k].T)).sum() for k in keys if k in feats)
            if torch.is_tensor(part):
                (part * weight).backward()
        return loss / max(1, len(keys))


def _lum(x):
    return x[:, :3].mean(1, keepdim=True) if x.shape[1] >= 3 else x[:, :1]


def _spectrum(x, patch: int, periodic: bool):
    """Welch estimate of the luminance amplitude spectrum over Hann-windowed patches (DC removed)."""
    torch = require_torch()
    F = torch.nn.functional
    g = _lum(x)
    stride = max(1, patch // 2)
    if periodic:  # windows may straddle the wrap: pad circularly so every offset is seen
        g = F.pad(g, (0, patch - stride, 0, patch - stride), mode="circular")
    cols = F.unfold(g, patch, stride=stride)[0].T.reshape(-1, patch, patch)
    if cols.shape[0] > 1024:  # enough windows for a stable estimate
        cols = cols[torch.linspace(0, cols.shape[0] - 1, 1024, device=x.device).long()]
    cols = cols - cols.mean(dim=(1, 2), keepdim=True)
    win = torch.hann_window(patch, periodic=False, device=x.device, dtype=x.dtype)
    spec = torch.fft.rfft2(cols * (win[:, None] * win[None, :])).abs().pow(2).mean(0)
    return spec.clamp_min(0).sqrt()


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2

    out = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return out[:, :, None] if out.ndim == 2 else out


def _levels(out_hw, ex_hw) -> list[int]:
    """Reduction factors 2^k, coarsest first, while both the level's output and exemplar stay big enough."""
    k = 0
    while (k + 1 < _MAX_LEVELS and min(out_hw) / 2 ** (k + 1) >= _MIN_LEVEL_OUT
           and min(ex_hw) / 2 ** (k + 1) >= _MIN_LEVEL_EX):
        k += 1
    return [2 ** i for i in range(k, -1, -1)]


def _split_steps(steps: int, n: int) -> list[int]:
    """Coarse levels are cheap and set the layout: they get more of the steps; the finest at least a fifth."""
    if n == 1:
        return [steps]
    shares = np.array([2.0 ** (n - 1 - i) for i in range(n)]) ** 0.5
    out = np.maximum(2, np.round(steps * shares / shares.sum())).astype(int)
    out[-1] = max(out[-1], steps // 5, 2)
    return [int(v) for v in out]


def synthesize_neural(ex: np.ndarray, size, *, tileable: bool = True, seed: int = 0, device="auto", rep=None,
                      steps: int = 200, encoder="auto", models_dir=None, spectrum: float = 0.0,
                      memory_mb: float = 2048, tile: int | None = None, info: dict | None = None,
                      **options) -> np.ndarray:
    """Optimise pixels until their Gram matrices (and amplitude spectrum) match the exemplar's.

    `encoder`: "auto" (VGG19 if in the store, else built-in), "vgg19", "builtin" or a VGG19 file.
    `spectrum`: weight of the spectrum term (0, the default, = Gram only; ~0.3 helps regular layouts such as
    brick courses a little, and costs noise on irregular ones). `memory_mb` / `tile` bound the memory.
    """
    from ..errors import InputError
    from ..stylize.encoders import load_encoder
    from ..stylize.tiles import with_oom_fallback

    if options:
        raise InputError(f"texture method 'neural' has no option(s) {', '.join(sorted(options))}")
    from ..methods import check_number
    from ..validate import check_steps

    check_steps(steps)
    spectrum = check_number(spectrum, "spectrum", 0.0, hint="0 = off, about 0.3 for regular layouts")
    require_torch("neural texture synthesis")
    name = str(encoder or "auto")
    is_name = name.lower() in ("auto", "vgg19", "builtin")
    enc, note = load_encoder(name if is_name else "vgg19", models_dir, None if is_name else name)
    if info is not None:
        info["encoder"] = enc.name
        if note:
            info["note"] = (info.get("note", "") + " " + note.replace("gatys", "neural texture")).strip()
    return with_oom_fallback(_synthesize, ex, size, what="neural texture", device=device, tile=tile,
                             tileable=tileable, seed=seed, rep=rep, steps=steps, enc=enc, spectrum=float(spectrum),
                             memory_mb=memory_mb)


def _optimise_level(start, stats, targets, spec, tileable: bool, n_steps: int, report):
    """L-BFGS with a line search on the pixels of one level; `spec` = (weight, patch, target, norm) or None."""
    torch = require_torch()
    xv = start.detach().clone().requires_grad_(True)
    count = [0]

    def closure():
        report(count[0])
        count[0] += 1
        opt.zero_grad(set_to_none=True)
        loss = stats.loss_backward(xv, targets, tileable)
        extra = 10.0 * (xv - xv.clamp(0, 1)).pow(2).mean()  # soft range: L-BFGS needs a smooth objective
        if spec is not None:
            weight, patch, target, norm = spec
            extra = extra + weight * 0.5 * (_spectrum(xv, patch, tileable) - target).pow(2).sum() / norm
        extra.backward()
        return torch.tensor(loss + float(extra.detach()))

    opt = torch.optim.LBFGS([xv], lr=1.0, max_iter=n_steps, max_eval=n_steps, history_size=20,
                            tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
    opt.step(closure)
    return xv.detach()


def _synthesize(ex, size, *, device, tile, tileable, seed, rep, steps, enc, spectrum, memory_mb):
    from ..core import resolve_device

    torch = require_torch("neural texture synthesis")
    dev = resolve_device(device) if isinstance(device, str) else device
    enc = enc.to(dev)
    H, W = size
    C = ex.shape[2]
    steps = max(1, int(steps))
    margin = 64 if getattr(enc, "name", "") == "vgg19" else 48  # receptive-field radius, a multiple of 16
    bpp = getattr(enc, "bytes_per_pixel", 4096) * (2 if C == 4 else 1)
    if tile is None:
        tile = int(np.sqrt(max(1.0, memory_mb) * 2 ** 20 / bpp)) - 2 * margin
    tile = max(64, int(tile) // 16 * 16)
    stats = _Statistics(enc, enc.style_layers, C, margin, tile)
    factors = _levels((H, W), ex.shape[:2])
    level_steps = _split_steps(steps, len(factors))
    total = sum(level_steps)
    gen = torch.Generator().manual_seed(int(seed))
    x = None
    done = 0
    for li, (f, n_steps) in enumerate(zip(factors, level_steps, strict=True)):
        h, w = max(8, round(H / f)), max(8, round(W / f))
        exl = ex if f == 1 else _resize(ex, max(8, round(ex.shape[0] / f)), max(8, round(ex.shape[1] / f)))
        e = torch.from_numpy(np.ascontiguousarray(exl.transpose(2, 0, 1)))[None].to(dev)
        sums = stats.grams(e, periodic=False)
        targets = {k: g / n for k, (g, n) in sums.items()}
        # windows of half the exemplar: several of them, so the estimate is an average, not one noisy periodogram
        patch = int(min(128, exl.shape[0] // 2, exl.shape[1] // 2, h, w)) // 8 * 8
        use_spec = spectrum > 0 and patch >= 16
        spec_t, spec_norm = None, 1.0
        if use_spec:
            with torch.no_grad():
                spec_t = _spectrum(e, patch, periodic=False)
            spec_norm = float((spec_t ** 2).sum().clamp_min(1e-12))
        if x is None:
            mean = e.mean(dim=(2, 3), keepdim=True)
            start = mean + 0.15 * torch.randn(1, C, h, w, generator=gen).to(dev)
        elif tileable:
            start = fourier_resize(x, (h, w))
        else:
            start = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
        label = f"neural texture {w}x{h}" + (f" (level {li + 1}/{len(factors)})" if len(factors) > 1 else "")

        def report(i, n_steps=n_steps, label=label, done=done):
            if rep is not None:
                rep(min(done + i, total) / total, f"{label}: step {min(i + 1, n_steps)}/{n_steps}")

        spec = (spectrum, patch, spec_t, spec_norm) if use_spec else None
        x = _optimise_level(start, stats, targets, spec, tileable, n_steps, report)
        done += n_steps
    out = x.clamp(0, 1)[0].cpu().numpy().transpose(1, 2, 0)  # the finest level has the asked size
    return match_histograms(np.ascontiguousarray(out, dtype=np.float32), ex)
