"""The job file's schema and its validation: every step's task, keys, types and ranges.

The method choices and the method options a step takes come from the one method table (art_ai_addon/methods.py):
every option there marked `cli=True` is also a job key, with its type and range. A job is checked completely
before anything runs; a mistake is one line naming the file, the step and the key, with a "did you mean".
"""

from __future__ import annotations

import argparse
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

from .. import methods
from ..errors import InputError

TASKS = ("stylize", "texture", "seamless", "pbr", "detect", "inpaint", "render", "propagate", "upscale")
DEVICES = ("auto", "cuda", "mps", "cpu")
FEATURE = {"stylize": "stylize", "render": "stylize", "texture": "texture", "inpaint": "inpaint",
           "propagate": "propagate", "upscale": "upscale"}  # task -> methods
PBR_KEYS = ("height", "normal", "roughness", "ao")


@dataclass(frozen=True)
class Key:
    """One job key. kind: path, paths (one or a list), str, bool, int, float, unit (0..1), floats, size, frames,
    pathflag (true/false or a folder), choice. `engine`: the engine option it sets (the method options)."""

    kind: str
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    engine: str | None = None


_KINDS = {"int": "int", "float": "float", "unit": "unit", "bool": "bool", "str": "str", "path": "path",
          "floats": "floats"}


def method_keys(feature: str) -> dict[str, Key]:
    """`method` and the method options of a feature, as the methods table has them."""
    keys = {"method": Key("choice", methods.names(feature))}
    for opt in methods.cli_options(feature):
        keys[opt.name] = Key(_KINDS[opt.kind], min=opt.min, max=opt.max, engine=opt.name)
    return keys


COMMON = {"task": Key("str"), "name": Key("str"), "input": Key("paths"), "output": Key("path")}
_DEVICE = Key("choice", DEVICES)
_SEED = Key("int", min=0, max=methods.SEED_MAX)
_STYLE = {"style": Key("paths"), "strength": Key("unit"), "preserve_color": Key("bool"), "temporal": Key("bool"),
          "device": _DEVICE,
          # the CLI's spelling of style_weights (--style-weight, one per style), kept for existing job files
          "style_weight": Key("floats", min=0.0, engine="style_weights")}
OPTIONS: dict[str, dict[str, Key]] = {
    "stylize": {**_STYLE, "mask": Key("path"), **method_keys("stylize")},
    "texture": {"size": Key("size"), "tileable": Key("bool"), "pbr": Key("pathflag"), "seed": _SEED,
                "device": _DEVICE, **method_keys("texture")},
    "seamless": {"seed": _SEED},
    "pbr": {"strength": Key("float", min=0.0), "directx": Key("bool")},
    "detect": {"reference": Key("path"), "sensitivity": Key("unit")},
    "inpaint": {"mask": Key("path"), "detect": Key("bool"), "reference": Key("path"), "sensitivity": Key("unit"),
                "device": _DEVICE, **method_keys("inpaint")},
    "render": {"frames": Key("frames"), **_STYLE, "layers": Key("layers"), "keep_edges": Key("unit"),
               "upscale": Key("float", min=1.0, max=8.0), "upscale_method": Key("choice", methods.names("upscale")),
               "depth_scale": Key("bool"), "keyframes": Key("keyframes"), **method_keys("stylize")},
    "propagate": {"keyframes": Key("keyframes"), "passes": Key("path"), **method_keys("propagate")},
    "upscale": {"scale": Key("float", min=1.0, max=8.0), "tileable": Key("bool"), "pbr": Key("bool"),
                "device": _DEVICE, **method_keys("upscale")},
}


@dataclass
class Step:
    number: int  # 1-based, as the user counts them
    task: str
    opts: dict  # validated, paths absolute
    items: list = field(default_factory=list)  # plan.Item, filled by plan.plan

    @property
    def label(self) -> str:
        name = self.opts.get("name")
        return f"step {self.number} ({self.task}{': ' + name if name else ''})"

    @property
    def sequential(self) -> bool:
        """Items depend on the one before (temporal stylize, or frames of one render)."""
        return self.task == "render" or (self.task == "stylize" and bool(self.opts.get("temporal")))

    @property
    def method(self) -> methods.Method | None:
        """The method record of a stylize/texture/inpaint/render step (None for the others)."""
        feature = FEATURE.get(self.task)
        return methods.get(feature, self.opts.get("method")) if feature else None

    def engine_options(self) -> dict:
        """The method options the step sets, by their engine names."""
        keys = OPTIONS[self.task]
        return {keys[k].engine: v for k, v in self.opts.items() if keys.get(k) and keys[k].engine and v is not None}


class Where:
    """Builds the one-line error `JOB.toml: step 2 (stylize): key: what is wrong`."""

    def __init__(self, job: Path, number: int | None = None, task: str | None = None):
        self.prefix = f"{job.name}: " + (f"step {number}" + (f" ({task})" if task else "") + ": "
                                         if number is not None else "")

    def error(self, key: str, message: str) -> InputError:
        return InputError(f"{self.prefix}{key}: {message}")


def _type_name(v) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(v), type(v).__name__)


def absolute(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _in_range(where: Where, key: str, spec: Key, value):
    lo, hi = (0.0, 1.0) if spec.kind == "unit" else (spec.min, spec.max)
    if spec.kind == "unit" and not lo <= value <= hi:
        raise where.error(key, f"{value} is outside 0..1")
    if lo is not None and value < lo:
        raise where.error(key, f"must be {lo:g} or more, got {value}")
    if hi is not None and value > hi:
        raise where.error(key, f"must be {hi:g} or less, got {value}")
    return value


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Value:
    """One value being checked: where it is, its key and spec, and the job file's folder."""

    def __init__(self, where: Where, key: str, spec: Key, value, base: Path):
        self.where, self.key, self.spec, self.value, self.base = where, key, spec, value, base

    def bad(self, expected: str) -> InputError:
        return self.where.error(self.key, f"expected {expected}, got {_type_name(self.value)} {self.value!r}")

    def error(self, message: str) -> InputError:
        return self.where.error(self.key, message)


def _choice(v: _Value):
    if not isinstance(v.value, str) or v.value.lower() not in v.spec.choices:
        raise v.error(f"{v.value!r} is not one of {', '.join(v.spec.choices)}")
    return v.value.lower()


def _str(v: _Value):
    if not isinstance(v.value, str):
        raise v.bad("a string")
    return v.value


def _absolute(v: _Value, value: str) -> str:
    """A path of the job, absolute, and with no part longer than the file system takes."""
    from ..imageio import name_length_problem

    p = absolute(value, v.base)
    problem = name_length_problem(p)
    if problem:
        raise v.error(problem)
    return str(p)


def _path(v: _Value):
    if not isinstance(v.value, str) or not v.value:
        raise v.bad("a path (string)")
    return _absolute(v, v.value)


def _keyframes(v: _Value):
    """keyframes = {1 = "painted_0001.png", 48 = "painted_0048.png"}: frame number -> painted image."""
    if not isinstance(v.value, dict) or not v.value:
        raise v.bad('a table {FRAME = "painted.png", ...}')
    out = {}
    for k, path in v.value.items():
        try:
            n = int(k)
        except ValueError:
            raise v.error(f"{k!r} is not a frame number") from None
        if not isinstance(path, str) or not path:
            raise v.error(f"frame {n}: expected the painted image's path")
        out[n] = _absolute(v, path)
    return out


_LAYER_KEYS = ("target", "style", "method", "strength")


def _layers(v: _Value):
    """layers = [{target = "Sphere", style = "oil.jpg", method = "arbitrary", strength = 0.8}, ...]"""
    if not isinstance(v.value, list) or not v.value or not all(isinstance(x, dict) for x in v.value):
        raise v.bad("a list of tables {target = ..., style = ..., method = ..., strength = ...}")
    out = []
    for i, raw in enumerate(v.value, start=1):
        for key in raw:
            if key not in _LAYER_KEYS:
                hint = difflib.get_close_matches(str(key), _LAYER_KEYS, 1)
                raise v.error(f"layer {i}: unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                              + f"; a layer takes {', '.join(_LAYER_KEYS)}")
        target, style = raw.get("target"), raw.get("style")
        if not isinstance(target, str) or not target.strip():
            raise v.error(f"layer {i}: `target` missing: an object name, collection:NAME, material:NAME or *")
        if not isinstance(style, str) or not style:
            raise v.error(f"layer {i} ({target}): `style` missing: a style image path")
        layer = {"target": target.strip(), "style": _absolute(v, style)}
        if "method" in raw:
            if raw["method"] not in methods.names("stylize"):
                raise v.error(f"layer {i} ({target}): unknown method {raw['method']!r}; one of "
                              f"{', '.join(methods.names('stylize'))}")
            layer["method"] = raw["method"]
        if "strength" in raw:
            st = raw["strength"]
            if isinstance(st, bool) or not isinstance(st, (int, float)) or not 0.0 <= float(st) <= 1.0:
                raise v.error(f"layer {i} ({target}): strength must be a number in 0..1, got {st!r}")
            layer["strength"] = float(st)
        out.append(layer)
    return out


def _paths(v: _Value):
    values = v.value if isinstance(v.value, list) else [v.value]
    if not values or not all(isinstance(x, str) and x for x in values):
        raise v.bad("a path or a list of paths")
    return [_absolute(v, x) for x in values]


def _bool(v: _Value):
    if not isinstance(v.value, bool):
        raise v.bad("true or false")
    return v.value


def _int(v: _Value):
    if isinstance(v.value, bool) or not isinstance(v.value, int):
        raise v.bad("an integer")
    spec = v.spec if v.spec.min is not None else Key("int", min=0)
    return _in_range(v.where, v.key, spec, v.value)


def _float(v: _Value):
    if not _is_number(v.value):
        raise v.bad("a number")
    if not math.isfinite(v.value):
        raise v.error(f"must be a finite number, got {v.value}")
    return float(_in_range(v.where, v.key, v.spec, v.value))


def _floats(v: _Value):
    values = v.value if isinstance(v.value, list) else [v.value]
    if not all(_is_number(x) for x in values):
        raise v.bad("a number or a list of numbers")
    if not all(math.isfinite(x) for x in values):
        raise v.error(f"must be finite numbers, got {v.value}")
    return [float(_in_range(v.where, v.key, v.spec, x)) for x in values]


def _pathflag(v: _Value):
    if isinstance(v.value, bool):
        return v.value
    if isinstance(v.value, str) and v.value:
        return _absolute(v, v.value)
    raise v.bad("true/false or a folder")


def _pair(v: _Value):
    """'WxH' / 'A-B', N, or [W, H] / [A, B]."""
    from ..args import parse_frames, parse_size

    size = v.spec.kind == "size"
    value = v.value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                          for x in value):
        text = f"{value[0]}x{value[1]}" if size else f"{value[0]}-{value[1]}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise v.bad("'WxH', N or [W, H]" if size else "'A-B', N or [A, B]")
    try:
        return parse_size(text) if size else parse_frames(text)
    except argparse.ArgumentTypeError as exc:
        raise v.error(str(exc)) from None


_CHECKS = {"choice": _choice, "str": _str, "path": _path, "paths": _paths, "layers": _layers, "keyframes": _keyframes,
           "bool": _bool, "int": _int,
           "float": _float, "unit": _float, "floats": _floats, "pathflag": _pathflag, "size": _pair,
           "frames": _pair}


def check_value(where: Where, key: str, spec: Key, value, base: Path):
    """The value converted for the runner (paths absolute), or an InputError naming the key."""
    return _CHECKS[spec.kind](_Value(where, key, spec, value, base))


def load_job(path) -> dict:
    """The parsed TOML; exit-2 errors for a missing file or bad syntax."""
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise InputError(f"JOB.toml: {p} does not exist" if not p.exists() else f"JOB.toml: {p} is not a file")
    try:
        data = p.read_bytes()
        # a byte-order mark (Windows Notepad writes one) is not TOML, but it is not the user's mistake either
        return tomllib.loads(data.removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
    except OSError as exc:
        raise InputError(f"JOB.toml: cannot read {p}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p.name}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{p.name}: not valid TOML: the file is not UTF-8 text") from None
    except RecursionError:
        raise InputError(f"{p.name}: not valid TOML for a job: arrays or tables nested too deep; a job is a list "
                         "of [[step]] tables of plain values") from None


def _task(w: Where, raw: dict) -> str:
    task = raw.get("task")
    if task is None:
        raise w.error("task", f"missing; use one of {', '.join(TASKS)}")
    if task not in TASKS:
        hint = difflib.get_close_matches(str(task), TASKS, 1)
        raise w.error("task", f"unknown task {task!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                      + f"; use one of {', '.join(TASKS)}")
    return task


def _check_step(w: Where, step: Step) -> None:
    """What single keys cannot say: required keys, combinations, and options the chosen method does not take."""
    opts, task = step.opts, step.task
    for key in ("input", "output"):
        if key not in opts:
            raise w.error(key, "missing")
    if task == "stylize" and not opts.get("style") and not opts.get("model"):
        raise w.error("style", "missing (give a style image, or a fast-style `model`)")
    if task == "inpaint" and bool(opts.get("mask")) == bool(opts.get("detect")):
        raise w.error("mask", "give either `mask` or `detect = true`")
    if task == "inpaint" and opts.get("mask") and opts.get("reference"):
        raise w.error("reference", "only used with `detect = true` (it finds the damage by comparing); with `mask` "
                                   "the mask says what to fill: give one of them")
    if task == "render" and len(opts["input"]) != 1:
        raise w.error("input", "render takes one .blend file")
    if task == "render" and (opts.get("keep_edges") or opts.get("depth_scale")) and not (opts.get("layers")
                                                                                     or opts.get("style")):
        raise w.error("keep_edges" if opts.get("keep_edges") else "depth_scale",
                      "shapes a stylization: give `style` or `layers`")
    if task == "propagate" and not opts.get("keyframes"):
        raise w.error("keyframes", 'missing: give keyframes = {FRAME = "painted.png"}')
    if task == "render" and opts.get("layers") and len(opts.get("style") or []) > 1:
        raise w.error("style", "with `layers`, `style` takes one image (the layer for everything else)")
    if "style_weight" in opts and "style_weights" in opts:
        raise w.error("style_weight", "give `style_weights` only (style_weight is its older name)")
    weights = opts.get("style_weights") or opts.get("style_weight")
    if weights and len(weights) != len(opts.get("style", [])):
        raise w.error("style_weights" if "style_weights" in opts else "style_weight",
                      "needs one weight per style image")
    feature = FEATURE.get(task)
    if feature:
        try:
            methods.check(feature, opts.get("method"), step.engine_options())
        except InputError as exc:
            raise InputError(f"{w.prefix}{exc}") from None


def validate(job_path, data: dict) -> list[Step]:
    """Check every step's task, option names, types and ranges; returns the steps with absolute paths."""
    job = Path(job_path)
    base = job.resolve().parent
    where = Where(job)
    for key in data:
        if key != "step":
            raise where.error(key, "unknown top-level key; a job is a list of [[step]] tables")
    steps_raw = data.get("step")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise where.error("step", "no [[step]] tables in the job file")
    steps = []
    for n, raw in enumerate(steps_raw, start=1):
        if not isinstance(raw, dict):
            raise Where(job, n).error("step", "must be a [[step]] table")
        task = _task(Where(job, n), raw)
        w = Where(job, n, task)
        known = {**COMMON, **OPTIONS[task]}
        opts = {}
        for key, value in raw.items():
            if key not in known:
                hint = difflib.get_close_matches(key, known, 1)
                raise w.error(key, "unknown option" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                              + f"; {task} takes {', '.join(k for k in known if k != 'task')}")
            opts[key] = check_value(w, key, known[key], value, base)
        step = Step(n, task, opts)
        _check_step(w, step)
        steps.append(step)
    return steps
