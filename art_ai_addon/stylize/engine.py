"""stylize(): the checks every method shares, then one runner per method (the method table names them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import methods as _methods
from ..core import as_image, as_mask, blend_masked, merge_alpha, reporter, resolve_device, split_alpha, unit_result
from ..errors import InputError
from ..imageio import image_or_path


def _styles(style) -> list:
    """One style or a list of them -> list of (h, w, 3) RGB arrays (transparent style pixels ignored)."""
    items = list(style) if isinstance(style, (list, tuple)) else [style]
    if not items:
        raise InputError("style: no style image given")
    out = []
    for k, item in enumerate(items):
        rgb, _ = split_alpha(image_or_path(item, f"style {k + 1}" if len(items) > 1 else "style"))
        out.append(rgb)
    return out


def _pick_auto(options, info) -> str:
    """fast if a model is given, arbitrary / adain if their weights are at hand, else gatys (which always works)."""
    if options.get("model"):
        return "fast"
    from ..errors import ModelError
    from .adain import find_weights

    if not (options.get("encoder") or options.get("decoder")):
        from .arbitrary import find_weights as find_arbitrary

        try:
            pred, trans = find_arbitrary(options.get("models_dir"))
        except ModelError as exc:
            pred = trans = None
            info["note"] = f"arbitrary-style weights not usable ({exc}); "
        if pred is not None and trans is not None:
            info["note"] = ("auto picked 'arbitrary': Magenta's arbitrary-style networks are in the model store "
                            f"({pred.name}, {trans.name})")
            return "arbitrary"
    try:
        enc, dec = find_weights(options.get("encoder"), options.get("decoder"), options.get("models_dir"))
    except ModelError as exc:
        if options.get("encoder") and options.get("decoder"):
            raise  # both named explicitly: the user meant adain, so say what is wrong with them
        info["note"] += f"AdaIN weights not usable ({exc}); "
        return "gatys"
    return "adain" if enc is not None and dec is not None else "gatys"


@dataclass
class _Run:
    """What a method's runner gets: the content (and its working copy), the styles, the checked options."""

    rgb: np.ndarray  # the content's colour
    work: np.ndarray  # what the network sees (luminance only with preserve_color)
    styles: list
    work_styles: list
    style_weights: list | None
    strength: float
    device: object
    models_dir: object
    preserve_color: bool
    options: dict
    info: dict
    rep: object = field(repr=False, default=None)


def _run_gatys(r: _Run):
    from .encoders import load_encoder
    from .gatys import gatys
    from .tiles import with_oom_fallback

    kw = dict(r.options)
    enc_opt = kw.pop("encoder", None) or "auto"
    is_name = str(enc_opt).lower() in ("auto", "vgg19", "builtin")
    encoder, note = load_encoder(enc_opt if is_name else "vgg19", r.models_dir, None if is_name else enc_opt)
    r.info["note"] = (r.info["note"] + note).strip()
    r.info["encoder"] = encoder.name
    init = kw.get("init")
    if isinstance(init, np.ndarray) or (init is not None and not isinstance(init, str)):
        init_rgb = split_alpha(as_image(init, "init"))[0]
        if init_rgb.shape[:2] != r.rgb.shape[:2]:
            raise InputError("init: the start image must have the content's size")
        if r.preserve_color:
            from ._util import luminance_pair

            init_rgb = luminance_pair(init_rgb, init_rgb)[0]
        kw["init"] = init_rgb
    return with_oom_fallback(gatys, r.work, r.work_styles, what="gatys", style_weights=r.style_weights,
                             strength=r.strength, device=r.device, encoder=encoder, rep=r.rep.sub(0.0, 0.97), **kw)


def _run_fast(r: _Run):
    from .fast import fast

    # the network saw colour in training: run it on colour, keep only its lightness if asked
    out = fast(r.rgb, models_dir=r.models_dir, device=r.device, rep=r.rep, **r.options)
    if r.styles:
        r.info["note"] = "the fast method's style comes from its trained model; the style image was not used"
    return out if r.strength >= 1.0 else r.rgb + (out - r.rgb) * r.strength


def _run_arbitrary(r: _Run):
    from .arbitrary import arbitrary

    return arbitrary(r.work, r.work_styles, style_weights=r.style_weights, strength=r.strength,
                     models_dir=r.models_dir, device=r.device, rep=r.rep, **r.options)


def _run_adain(r: _Run):
    from .adain import adain

    return adain(r.work, r.work_styles, style_weights=r.style_weights, strength=r.strength, models_dir=r.models_dir,
                 device=r.device, rep=r.rep, **r.options)


_RUNNERS = {"gatys": _run_gatys, "fast": _run_fast, "arbitrary": _run_arbitrary, "adain": _run_adain}


def _weights(style_weights, n: int):
    if style_weights is None:
        return None
    weights = [float(w) for w in np.atleast_1d(style_weights)]
    if len(weights) != n:
        raise InputError(f"style_weights: {len(weights)} weights for {n} styles; give one each")
    if min(weights) < 0 or sum(weights) <= 0:
        raise InputError("style_weights: weights must be >= 0 and not all 0")
    return weights


def stylize(content, style, *, method: str = "auto", strength: float = 1.0, preserve_color: bool = False,
            mask=None, device: str = "auto", progress=None, cancel=None, info: dict | None = None,
            **method_options):
    """Return `content` in the look of `style` (one image or a list); `info["method"]`/`["note"]` say what ran.

    Options are the method table's (art_ai_addon/methods.py): gatys `steps`, `seed`, `encoder` ("auto", "vgg19",
    "builtin" or a VGG19 file), `init`; fast `model` (path or store name); adain `encoder`, `decoder`; arbitrary
    `style_scale`; several styles mixed by `style_weights`; `memory_mb` / `tile` for large images; `models_dir`.
    """
    from ..validate import check_number

    record, method_options = _methods.check("stylize", method, method_options)
    strength = check_number(strength, "strength", 0.0, 1.0)
    info = info if info is not None else {}
    info["note"] = ""
    m = _pick_auto(method_options, info) if record.name == "auto" else record.name
    info["method"] = m
    chosen = _methods.get("stylize", m)
    method_options = _methods.for_method(chosen, method_options)
    if m == "color":
        from ..color import color_transfer

        return color_transfer(content, _styles(style)[0], strength=strength, preserve_color=preserve_color,
                              mask=mask, progress=progress, cancel=cancel, **_methods.used(chosen, method_options))
    rep = reporter(progress, cancel)
    img = as_image(content, "content", copy=False)  # read-only: the runners make new arrays
    rgb, alpha = split_alpha(img)
    msk = as_mask(mask, img.shape, "mask")
    opts = dict(method_options)
    models_dir = opts.pop("models_dir", None)
    styles = _styles(style) if (style is not None or m != "fast") else []
    style_weights = _weights(opts.pop("style_weights", None), len(styles))
    if strength <= 0.0:
        rep(1.0, "strength 0: unchanged")
        return img.copy()
    work, work_styles = rgb, styles
    if preserve_color:
        from ._util import luminance_pair

        pairs = [luminance_pair(rgb, st) for st in styles]
        work = pairs[0][0] if pairs else rgb
        work_styles = [p[1] for p in pairs]
    rep(0.0, f"stylize ({m})")
    run = _Run(rgb, work, styles, work_styles, style_weights, strength, resolve_device(device), models_dir,
               preserve_color, _methods.used(chosen, opts), info, rep)
    out = _RUNNERS[m](run)
    if preserve_color:
        from ._util import recolor

        out = recolor(rgb, out)
    out = blend_masked(rgb, unit_result(out, f"stylize ({m})"), msk)
    rep(1.0, "done")
    if alpha is None and img.shape[2] == 3:
        if not out.flags.writeable:  # a view of the caller's pixels (a runner that changed nothing): give a copy
            return np.array(out, dtype=np.float32)
        return np.ascontiguousarray(out, dtype=np.float32)  # in [0, 1] already: merge_alpha would only copy it
    return merge_alpha(out, alpha, like=img)


def train_fast_style(style, content_images, *, steps: int = 2000, name: str | None = None, models_dir=None,
                     progress=None, cancel=None, **options) -> Path:
    """Train a fast-style network on the user's images; see `fast.train_fast_style`."""
    from .fast import train_fast_style as _train

    return _train(style, content_images, steps=steps, name=name, models_dir=models_dir, progress=progress,
                  cancel=cancel, **options)
