"""Textures: tileable synthesis (patch quilting, neural Gram, periodic GAN), make-seamless and PBR maps."""

from __future__ import annotations

import numpy as np

from .. import methods as _methods
from ..core import as_image, check_work_memory, luminance, reporter, split_alpha
from ..errors import InputError

METHODS = _methods.names("texture")
_MAX_SIDE = 16384


def _size(size) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(f"size: expected (height, width), got {size!r}") from None
    if not (8 <= h <= _MAX_SIDE and 8 <= w <= _MAX_SIDE):
        raise InputError(f"size: {w}x{h} is out of range; each side must be 8..{_MAX_SIDE} pixels")
    return h, w


def _channels(img: np.ndarray) -> np.ndarray:
    """Grey stays one channel, colour keeps 3 (+ alpha, which is synthesized with the colour)."""
    if img.shape[2] == 1:
        return img
    return img[:, :, :4] if img.shape[2] == 4 else img[:, :, :3]


def grey_rgb(img: np.ndarray) -> bool:
    """Colour channels equal to within half a byte step: a grey texture handed over as RGB(A), as every Blender
    image is. The methods then work on the one grey channel (+ alpha), so none can invent colour (the neural and
    GAN methods did: speckle up to 50/255 off grey)."""
    return img.shape[2] >= 3 and bool(np.abs(img[:, :, 1:3] - img[:, :, :1]).max() <= 0.5 / 255.0)


def synthesize_texture(exemplar, size=(512, 512), *, method: str = "auto", tileable: bool = True, seed: int = 0,
                       progress=None, cancel=None, info: dict | None = None, **options) -> np.ndarray:
    """A texture of `size` (h, w) that looks like `exemplar` without repeating it; wraps when `tileable`.

    `method`: "patch" (image quilting, fast, no torch), "neural" (Gram-matrix optimisation), "gan" (multi-scale
    periodic GAN trained on the exemplar, kept in the model store) or "auto" (gan if one was trained for this
    exemplar, else patch). `info["method"]` tells which one ran; for neural, `info["encoder"]` which encoder
    and `info["note"]` what quality is lost without VGG19.
    """
    ex = _channels(as_image(exemplar, "exemplar"))
    grey = grey_rgb(ex)
    if grey:
        ex = np.ascontiguousarray(ex[:, :, [0, 3] if ex.shape[2] == 4 else [0]])
    if min(ex.shape[:2]) < 8:
        raise InputError(f"exemplar: {ex.shape[1]}x{ex.shape[0]} is too small; give at least 8x8 pixels")
    h, w = _size(size)
    seed = _methods.check_number(seed, "seed", 0, _methods.SEED_MAX, whole=True)
    device = options.pop("device", "auto")
    record, options = _methods.check("texture", method, options)
    m = record.name
    rep = reporter(progress, cancel)
    models_dir = options.pop("models_dir", None)
    if m == "auto":
        from .gan import find_trained

        m = "gan" if find_trained(ex, models_dir) is not None else "patch"
        if m == "gan" and _methods.missing_here(("torch",)):
            m = "patch"
            if info is not None:
                info["note"] = "a GAN was trained for this exemplar, but PyTorch is not here; used patch"
    options = _methods.used(_methods.get("texture", m), options)
    options.pop("models_dir", None)
    if info is not None:
        info["method"] = m
    rep(0.0, f"texture ({m})")
    if m == "patch":
        block = int(options.pop("block", 0) or 0)
        overlap = int(options.pop("overlap", 0) or 0)
        tolerance = float(options.pop("tolerance", 0.1))
        _no_more(options, m)
        from .quilt import default_block, quilt

        block = block or default_block(*ex.shape[:2])
        overlap = overlap or max(2, block // 4)
        out = quilt(ex, (h, w), block=block, overlap=overlap, wrap=bool(tileable), seed=int(seed),
                    tolerance=tolerance, rep=rep)
    elif m == "neural":
        from .neural import synthesize_neural

        out = synthesize_neural(ex, (h, w), tileable=bool(tileable), seed=int(seed), device=device, rep=rep,
                                models_dir=models_dir, info=info, **options)
    else:
        from .gan import synthesize_gan

        out = synthesize_gan(ex, (h, w), tileable=bool(tileable), seed=int(seed), device=device,
                             models_dir=models_dir, rep=rep, **options)
    from ..core import unit_result

    out = unit_result(np.asarray(out, dtype=np.float32), f"texture ({m})")
    if grey:
        out = out[:, :, [0, 0, 0, 1] if out.shape[2] == 2 else [0, 0, 0]]
    rep(1.0, "texture done")
    return np.ascontiguousarray(out)


def _no_more(options: dict, method: str) -> None:
    if options:
        raise InputError(f"texture method {method!r} has no option(s) {', '.join(sorted(options))}")


def make_seamless(image, *, progress=None, cancel=None, seed: int = 0, info: dict | None = None,
                  **options) -> np.ndarray:
    """The same image, same size and look, made to tile: the wrap seam is re-synthesized from the image itself.
    Each pair of opposite edges is measured first; a pair that already meets is left as it is, and a texture
    that already tiles comes back unchanged (`info["note"]` says so).

    Options: `band` (width of the re-synthesized seam cross, pixels), `overlap`, `lowfreq` (also remove the
    smooth brightness difference between opposite edges; default on).
    """
    img = _channels(as_image(image, "image"))
    seed = _methods.check_number(seed, "seed", 0, _methods.SEED_MAX, whole=True)
    check_work_memory("make_seamless", img.shape, "image")
    rep = reporter(progress, cancel)
    from .seamless import seam_needs, seamless

    band, overlap = (options.pop(k, None) for k in ("band", "overlap"))
    band = None if band is None else _methods.check_number(band, "band", 1, whole=True, hint="seam width, pixels")
    overlap = None if overlap is None else _methods.check_number(overlap, "overlap", 1, whole=True, hint="pixels")
    lowfreq = options.pop("lowfreq", True)
    if not isinstance(lowfreq, (bool, np.bool_)):
        raise InputError(f"lowfreq: expected True or False, got {lowfreq!r}")
    options.pop("device", None)
    _no_more(options, "seamless")
    rep(0.0, "making seamless")
    if info is not None:
        across, down = seam_needs(img)
        info["note"] = ("it already tiles: unchanged" if not (across or down) else
                        "its left and right edges already met: only the top/bottom seam was covered" if not across
                        else "its top and bottom edges already met: only the left/right seam was covered"
                        if not down else "")
    out = seamless(img, band=band, overlap=overlap, seed=int(seed), lowfreq=lowfreq, rep=rep)
    rep(1.0, "seamless done")
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


def pbr_maps(albedo, *, strength: float = 1.0, directx: bool = False, tileable: bool | None = None,
             progress=None, cancel=None, **options) -> dict:
    """{"height", "roughness", "ao"}: (H, W, 1); {"normal"}: (H, W, 3) encoded (n + 1) / 2. All in [0, 1].

    `tileable=None` checks whether the albedo already wraps and then filters around the wrap so the maps
    tile too. `strength` scales the normal relief; `directx` flips green (-Y) for DirectX engines.
    Alpha is not part of the maps (they describe the surface; transparency stays in the albedo).
    """
    from .pbr import ao_map, height_map, normal_map, roughness_map, tiles

    img = as_image(albedo, "albedo")
    check_work_memory("pbr_maps", img.shape, "albedo")
    rgb, _alpha = split_alpha(img)
    strength = _methods.check_number(strength, "strength", 0.0, hint="1 = default relief")
    detail = _methods.check_number(options.pop("detail", 1.0), "detail", 0.0, hint="1 = default fine relief")
    _no_more(options, "pbr")
    rep = reporter(progress, cancel)
    wrap = tiles(rgb) if tileable is None else bool(tileable)
    lum = luminance(rgb)
    rep(0.1, "height")
    height = height_map(lum, wrap, detail)
    rep(0.4, "normal")
    normal = normal_map(height, float(strength), wrap, bool(directx))
    rep(0.6, "roughness")
    rough = roughness_map(lum, height, wrap)
    rep(0.8, "ambient occlusion")
    ao = ao_map(height, wrap)
    rep(1.0, "maps done")
    return {"height": height[:, :, None], "normal": normal, "roughness": rough[:, :, None], "ao": ao[:, :, None]}


__all__ = ["synthesize_texture", "make_seamless", "pbr_maps", "METHODS"]
