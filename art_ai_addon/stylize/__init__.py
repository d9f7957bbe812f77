"""Stylize: give an image the look of a style image.

Methods: "gatys" (optimisation on CNN features, VGG19 or a built-in random encoder), "fast"
(a trained Johnson transformer network), "adain" (arbitrary style in one pass), "color" (colour
distribution only). Every method keeps alpha, honours `mask`, `strength` and `preserve_color`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import as_image, as_mask, blend_masked, merge_alpha, reporter, resolve_device, split_alpha
from ..errors import InputError

METHODS = ("auto", "gatys", "fast", "adain", "color")

_GATYS_OPTS = {"steps", "seed", "lr", "style_scale", "coarsest", "max_levels", "tv_weight", "content_weight", "init",
               "optimizer", "memory_mb", "tile", "overlap"}
_FAST_OPTS = {"memory_mb", "tile", "overlap", "half"}
_ADAIN_OPTS = {"memory_mb", "tile", "overlap", "half", "style_size"}
_COMMON = {"model", "models_dir", "encoder", "decoder", "style_weights", "seed", "steps", "init"}


def _read_style(style, k: int):
    what = "style" if k < 0 else f"style {k + 1}"
    if isinstance(style, (str, Path)):
        from ..imageio import read_image

        p = Path(style)
        if not p.is_file():
            raise InputError(f"{what}: {p} does not exist; give an image file (PNG, JPEG, EXR, ...)")
        try:
            return read_image(p)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means an unreadable style file
            raise InputError(f"{what}: {p} could not be read as an image ({str(exc)[:120]})") from None
    return as_image(style, what)


def _styles(style) -> list:
    """One style or a list of them -> list of (h, w, 3) RGB arrays (transparent style pixels ignored)."""
    items = list(style) if isinstance(style, (list, tuple)) else [style]
    if not items:
        raise InputError("style: no style image given")
    out = []
    for k, item in enumerate(items):
        rgb, _ = split_alpha(_read_style(item, k if len(items) > 1 else -1))
        out.append(rgb)
    return out


def _pick_auto(options, info) -> str:
    """fast if a model is given, adain if its weights are at hand, else gatys (which always works)."""
    if options.get("model"):
        return "fast"
    from ..errors import ModelError
    from .adain import find_weights

    try:
        enc, dec = find_weights(options.get("encoder"), options.get("decoder"), options.get("models_dir"))
    except ModelError as exc:
        if options.get("encoder") and options.get("decoder"):
            raise  # both named explicitly: the user meant adain, so say what is wrong with them
        info["note"] = f"AdaIN weights not usable ({exc}); "
        return "gatys"
    return "adain" if enc is not None and dec is not None else "gatys"


def stylize(content, style, *, method: str = "auto", strength: float = 1.0, preserve_color: bool = False,
            mask=None, device: str = "auto", progress=None, cancel=None, info: dict | None = None,
            **method_options):
    """Return `content` in the look of `style` (one image or a list); `info["method"]`/`["note"]` say what ran.

    Options: gatys `steps`, `seed`, `encoder` ("auto", "vgg19", "builtin" or a VGG19 file), `init`;
    fast `model` (path or store name); adain `encoder`, `decoder`, `style_weights`; fast/adain
    `memory_mb` / `tile` for large images; all `models_dir`.
    """
    m = (method or "auto").lower()
    if m not in METHODS:
        raise InputError(f"method: unknown stylize method {method!r}; use one of {', '.join(METHODS)}")
    info = info if info is not None else {}
    info["note"] = ""
    if m == "auto":
        m = _pick_auto(method_options, info)
    info["method"] = m
    if m == "color":
        from ..color import color_transfer

        opts = {k: v for k, v in method_options.items() if k not in _COMMON or k == "seed"}
        styles = _styles(style)
        return color_transfer(content, styles[0], strength=strength, preserve_color=preserve_color, mask=mask,
                              progress=progress, cancel=cancel, **opts)

    rep = reporter(progress, cancel)
    img = as_image(content, "content")
    rgb, alpha = split_alpha(img)
    msk = as_mask(mask, img.shape, "mask")
    opts = dict(method_options)
    if "memory_budget_mb" in opts:  # the add-on preference's name
        opts["memory_mb"] = opts.pop("memory_budget_mb")
    models_dir = opts.pop("models_dir", None)
    style_weights = opts.pop("style_weights", None)
    styles = _styles(style) if (style is not None or m != "fast") else []
    if style_weights is not None:
        style_weights = [float(w) for w in np.atleast_1d(style_weights)]
        if len(style_weights) != len(styles):
            raise InputError(f"style_weights: {len(style_weights)} weights for {len(styles)} styles; give one each")
        if min(style_weights) < 0 or sum(style_weights) <= 0:
            raise InputError("style_weights: weights must be >= 0 and not all 0")
    s = float(np.clip(strength, 0.0, 1.0))
    if s <= 0.0:
        rep(1.0, "strength 0: unchanged")
        return img.copy()
    dev = resolve_device(device)
    work, work_styles = rgb, styles
    if preserve_color:
        from ._util import luminance_pair

        pairs = [luminance_pair(rgb, st) for st in styles]
        work = pairs[0][0] if pairs else rgb
        work_styles = [p[1] for p in pairs]
    allowed = {"gatys": _GATYS_OPTS | {"encoder"}, "fast": _FAST_OPTS | {"model"},
               "adain": _ADAIN_OPTS | {"encoder", "decoder"}}[m]
    # harmless for methods that do not use them (callers pass one set of options for every method)
    ignored = {"seed", "steps", "init", "model", "encoder", "decoder", "memory_mb", "tile", "overlap", "half"}
    unknown = sorted(set(opts) - allowed - ignored)
    if unknown:
        raise InputError(f"{unknown[0]}: not an option of stylize method {m!r} "
                         f"(options: {', '.join(sorted(allowed))})")
    kw = {k: v for k, v in opts.items() if k in allowed}
    rep(0.0, f"stylize ({m})")
    if m == "gatys":
        from .encoders import load_encoder
        from .gatys import gatys

        enc_opt = kw.pop("encoder", None) or "auto"
        is_name = str(enc_opt).lower() in ("auto", "vgg19", "builtin")
        encoder, note = load_encoder(enc_opt if is_name else "vgg19", models_dir, None if is_name else enc_opt)
        info["note"] = (info["note"] + note).strip()
        info["encoder"] = encoder.name
        init = kw.get("init")
        if isinstance(init, np.ndarray) or (init is not None and not isinstance(init, str)):
            init_rgb = split_alpha(as_image(init, "init"))[0]
            if init_rgb.shape[:2] != rgb.shape[:2]:
                raise InputError("init: the start image must have the content's size")
            if preserve_color:
                from ._util import luminance_pair

                init_rgb = luminance_pair(init_rgb, init_rgb)[0]
            kw["init"] = init_rgb
        from .tiles import with_oom_fallback

        out = with_oom_fallback(gatys, work, work_styles, what="gatys", style_weights=style_weights, strength=s,
                                device=dev, encoder=encoder, rep=rep.sub(0.0, 0.97), **kw)
    elif m == "fast":
        from .fast import fast

        # the network saw colour in training: run it on colour, keep only its lightness if asked
        out = fast(rgb, models_dir=models_dir, device=dev, rep=rep, **kw)
        if styles:
            info["note"] = "the fast method's style comes from its trained model; the style image was not used"
        if s < 1.0:
            out = rgb + (out - rgb) * s
    else:
        from .adain import adain

        out = adain(work, work_styles, style_weights=style_weights, strength=s, models_dir=models_dir, device=dev,
                    rep=rep, **kw)
    if preserve_color:
        from ._util import recolor

        out = recolor(rgb, out)
    out = blend_masked(rgb, np.clip(out, 0.0, 1.0), msk)
    rep(1.0, "done")
    return merge_alpha(out, alpha, like=img)


def train_fast_style(style, content_images, *, steps: int = 2000, name: str | None = None, models_dir=None,
                     progress=None, cancel=None, **options) -> Path:
    """Train a fast-style network on the user's images; see `fast.train_fast_style`."""
    from .fast import train_fast_style as _train

    return _train(style, content_images, steps=steps, name=name, models_dir=models_dir, progress=progress,
                  cancel=cancel, **options)


__all__ = ["METHODS", "stylize", "train_fast_style", "stylize_sequence"]

try:
    from .temporal import stylize_sequence  # noqa: E402
except ImportError:  # pragma: no cover - the temporal module ships with the same release
    pass
