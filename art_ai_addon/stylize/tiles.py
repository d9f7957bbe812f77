"""Feed-forward networks over large images: overlapping tiles, feathered blending, a memory budget.

Instance-normalised networks (Johnson's TransformerNet, AdaIN's statistics) would normalise each
tile by its own statistics, which shows as seams. `FrozenNorms` lets a network record its
normalisation statistics on the whole image (downscaled if it does not fit), and then apply those
same statistics inside every tile, so tiles agree with each other and with an untiled run.
Out of GPU memory: the tile size is halved and retried, then the CPU takes over with a warning.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..core import require_torch


class FrozenNorms:
    """Mixin for modules holding normalisation layers with `mode` in {"live", "record", "frozen"}."""

    def norm_layers(self):
        return [m for m in self.modules() if hasattr(m, "stats_mode")]

    def set_norm_mode(self, mode: str) -> None:
        for m in self.norm_layers():
            m.stats_mode = mode
            if mode == "record":
                m.saved = None


def _is_oom(exc: BaseException) -> bool:
    torch = require_torch()
    oom_types = tuple(t for t in (getattr(torch.cuda, "OutOfMemoryError", None),) if t is not None)
    return isinstance(exc, oom_types) or "out of memory" in str(exc).lower()


def with_oom_fallback(fn, *args, what: str, device, tile=None, **kw):
    """fn(*args, device=, tile=, **kw); out of GPU memory: retry in smaller tiles, then on the CPU, with a warning."""
    import warnings

    torch = require_torch()
    while True:
        try:
            return fn(*args, device=device, tile=tile, **kw)
        except RuntimeError as exc:
            dev = torch.device(device) if isinstance(device, str) else device
            if dev.type == "cpu" or not _is_oom(exc):
                raise
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            if tile is None or tile > 256:
                tile = 512 if tile is None else max(256, tile // 2)
                warnings.warn(f"{what}: out of GPU memory; retrying in {tile}px tiles", RuntimeWarning, stacklevel=3)
            else:
                warnings.warn(f"{what}: out of GPU memory even in small tiles; continuing on the CPU (slower)",
                              RuntimeWarning, stacklevel=3)
                device = torch.device("cpu")
                tile = None


def _ramp(n: int, overlap: int, start_edge: bool, end_edge: bool) -> np.ndarray:
    """1-D blending weights: a smooth rise over `overlap` pixels except at the image's own borders."""
    w = np.ones(n, dtype=np.float32)
    if overlap > 0:
        t = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        rise = 0.5 - 0.5 * np.cos(np.pi * t)  # raised cosine: weights of two overlapping tiles sum to 1
        if not start_edge:
            w[:overlap] = rise
        if not end_edge:
            w[n - overlap:] = np.minimum(w[n - overlap:], rise[::-1])
    return w


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def run_tiled(fn, x, *, tile: int, overlap: int = 32, margin: int | None = None, multiple: int = 1):
    """fn: (1, C, h, w) -> (1, C', h, w) applied over overlapping tiles of x, blended with feathering.

    Each tile is computed with `margin` extra pixels of real context on every side (cut off again),
    so the network's padding at the tile edge never reaches the pixels that are kept; the
    `overlap` band is then cross-faded between neighbours.
    """
    torch = require_torch()
    _, _, h, w = x.shape
    if h <= tile and w <= tile:
        return fn(x)
    overlap = int(min(overlap, tile // 2))
    margin = overlap if margin is None else int(margin)
    out = None
    weight = torch.zeros((1, 1, h, w), dtype=torch.float32, device=x.device)
    ys, xs = _starts(h, tile, overlap), _starts(w, tile, overlap)
    for y0 in ys:
        th = min(tile, h)
        wy = _ramp(th, overlap, y0 == 0, y0 + th >= h)
        for x0 in xs:
            tw = min(tile, w)
            wx = _ramp(tw, overlap, x0 == 0, x0 + tw >= w)
            ya, xa = max(0, y0 - margin), max(0, x0 - margin)
            yb, xb = min(h, y0 + th + margin), min(w, x0 + tw + margin)
            ya, xa = ya - (ya % multiple), xa - (xa % multiple)  # keep the crop on the network's grid
            y = fn(x[:, :, ya:yb, xa:xb]).float()[:, :, y0 - ya:y0 - ya + th, x0 - xa:x0 - xa + tw]
            if out is None:
                out = torch.zeros((1, y.shape[1], h, w), dtype=torch.float32, device=x.device)
            wt = torch.from_numpy(np.outer(wy, wx)).to(x.device)[None, None]
            out[:, :, y0:y0 + th, x0:x0 + tw] += y * wt
            weight[:, :, y0:y0 + th, x0:x0 + tw] += wt
    return out / weight.clamp_min(1e-8)


def forward_image(net, x, *, device, max_pixels: int, tile: int | None = None, overlap: int = 32,
                  stats_pixels: int | None = None, half: bool = True):
    """Run a FrozenNorms network on a whole image, tiling when it exceeds `max_pixels`.

    Returns (output tensor on the CPU, device actually used). Tries smaller tiles on OOM, then the CPU.
    """
    torch = require_torch()
    dev = device
    tile_size = tile
    while True:
        try:
            with torch.inference_mode():
                return _forward(net, x, dev, max_pixels, tile_size, overlap, stats_pixels, half), dev
        except RuntimeError as exc:
            if not _is_oom(exc) or dev.type == "cpu":
                raise
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            h, w = x.shape[2:]
            current = tile_size or int(np.sqrt(max_pixels))
            current = min(current, max(h, w))
            if current > 256:
                tile_size = max(256, current // 2)
                warnings.warn(f"out of GPU memory; retrying with {tile_size}px tiles", RuntimeWarning, stacklevel=2)
            else:
                warnings.warn("out of GPU memory even with small tiles; continuing on the CPU (slower)",
                              RuntimeWarning, stacklevel=2)
                dev = torch.device("cpu")
                tile_size = tile


def _place(net, dev, torch) -> None:
    """Move the network to `dev` (NHWC on CUDA) unless its first parameter is there already: Module.to visits every
    parameter, about 1.5 ms per call for these small networks, paid on every frame otherwise."""
    p = next(net.parameters(), None)
    nhwc = dev.type == "cuda"
    if p is not None and p.device.type == dev.type and (dev.index is None or p.device.index == dev.index) and (
            not nhwc or p.dim() != 4 or p.is_contiguous(memory_format=torch.channels_last)):
        return
    net.to(dev)
    if nhwc:  # cuDNN runs these convs fastest in NHWC (measured slower on CPU oneDNN here, so only on CUDA)
        net.to(memory_format=torch.channels_last)


def _forward(net, x, dev, max_pixels, tile, overlap, stats_pixels, half):
    torch = require_torch()
    _place(net, dev, torch)
    h, w = x.shape[2:]
    xd = x.to(dev)
    use_half = half and dev.type == "cuda"
    ctx = torch.autocast("cuda", dtype=torch.float16) if use_half else _nullcontext()
    if dev.type == "cuda":
        xd = xd.contiguous(memory_format=torch.channels_last)
    needs_tiles = tile is not None and (h > tile or w > tile)
    if not needs_tiles and h * w > max_pixels:
        needs_tiles = True
        tile = max(64, int(np.sqrt(max_pixels)))
    if needs_tiles:
        m = getattr(net, "multiple", 1)
        tile = max(m * 8, int(tile) // m * m)
        overlap = int(overlap) // m * m
    with ctx:
        if not needs_tiles:
            net.set_norm_mode("live")
            return net(xd).float().cpu()
        # record statistics on the whole image (downscaled to fit), then tile with them frozen
        limit = stats_pixels or max_pixels
        scale = min(1.0, float(np.sqrt(limit / float(h * w))))
        small = xd
        if scale < 1.0:
            small = torch.nn.functional.interpolate(xd, scale_factor=scale, mode="area")
        net.set_norm_mode("record")
        net(small)
        net.set_norm_mode("frozen")
        try:
            return run_tiled(lambda t: net(t).float(), xd, tile=tile, overlap=overlap,
                             multiple=getattr(net, "multiple", 1)).cpu()
        finally:
            net.set_norm_mode("live")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
