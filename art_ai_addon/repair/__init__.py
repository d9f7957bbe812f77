"""Repair: find damage (alone or against another version of the picture) and fill it.

`detect_damage` returns a float mask (H, W) in [0, 1]; `inpaint` fills where a mask is white with
OpenCV (telea, ns), multi-scale PatchMatch (patch), Deep Image Prior (dip), LaMa (lama) or per hole (auto).
The two load on first use: detection needs OpenCV, which a stock Blender's Python lacks.
"""

from __future__ import annotations

import importlib

from .. import methods as _methods

METHODS = _methods.names("inpaint")
_LAZY = {"detect_damage": ".detect", "inpaint": ".inpaint"}

__all__ = ["detect_damage", "inpaint", "METHODS"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
