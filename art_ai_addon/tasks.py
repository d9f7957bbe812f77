"""The engine's tasks by name: what the job runner, the engine worker and batch call.

A task takes plain keyword arguments (arrays, numbers, strings, paths) and returns an array, a dict of arrays, a
path or a (result, state) pair. `run(name, kwargs, progress, cancel)` returns (value, info): info says which
method ran and what quality was lost (the `info` dict the feature functions fill in).
"""

from __future__ import annotations

import importlib
import inspect

from .errors import InputError

# name -> (module, function)
TASKS = {
    "stylize": ("stylize", "stylize"),
    "stylize_sequence": ("stylize.temporal", "stylize_sequence"),
    "stylize_layers": ("stylize", "stylize_layers"),
    "stylize_layers_sequence": ("stylize.layers", "stylize_layers_sequence"),
    "propagate_keyframes": ("stylize.propagate", "propagate_keyframes"),
    "propagate_frame": ("stylize.propagate", "propagate_frame"),
    "train_fast_style": ("stylize", "train_fast_style"),
    "synthesize_texture": ("texture", "synthesize_texture"),
    "make_seamless": ("texture", "make_seamless"),
    "pbr_maps": ("texture", "pbr_maps"),
    "detect_damage": ("repair", "detect_damage"),
    "inpaint": ("repair", "inpaint"),
    "upscale": ("upscale", "upscale"),
    "upscale_maps": ("upscale", "upscale_maps"),
    "repair": (__name__, "repair"),
    "echo": (__name__, "echo"),
}


def echo(value, progress=None, cancel=None):
    """The value back: the worker's health check, and what bench/bridge.py times the pixel round trip with."""
    return value


def repair(image, mask=None, *, reference=None, sensitivity: float = 0.5, method: str = "auto", progress=None,
           cancel=None, info: dict | None = None, **options):
    """Inpaint `mask`, or the damage detected first when there is no mask (the operator's and CLI's repair)."""
    from .core import reporter
    from .repair import detect_damage, inpaint

    rep = reporter(progress, cancel)
    if mask is None:
        mask = detect_damage(image, reference=reference, sensitivity=sensitivity, progress=rep.sub(0.0, 0.3))
        rep = rep.sub(0.3, 1.0)
    kwargs = dict(method=method, progress=rep, **options)
    if info is not None and "info" in inspect.signature(inpaint).parameters:
        kwargs["info"] = info
    return inpaint(image, mask, **kwargs)


def function(name: str):
    if name not in TASKS:
        raise InputError(f"task: unknown engine task {name!r}; one of {', '.join(TASKS)}")
    module, attr = TASKS[name]
    mod = importlib.import_module(module if module == __name__ else f".{module}", __package__)
    return getattr(mod, attr)


def run(name: str, kwargs: dict, progress=None, cancel=None):
    """(value, info) of the task `name` called with `kwargs` and the progress/cancel hooks."""
    fn = function(name)
    params = inspect.signature(fn).parameters
    info: dict = {}
    call = dict(kwargs)
    if "info" in params:
        call["info"] = info
    call["progress"] = progress
    call["cancel"] = cancel
    return fn(**call), info
