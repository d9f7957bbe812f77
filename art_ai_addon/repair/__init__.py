"""Repair: find damage (alone or against another version of the picture) and fill it.

`detect_damage` returns a float mask (H, W) in [0, 1]; `inpaint` fills where a mask is white with
OpenCV (telea, ns), multi-scale PatchMatch (patch), Deep Image Prior (dip), LaMa (lama) or per hole (auto).
Detection loads on first use: it needs OpenCV at its module's top, which a stock Blender's Python lacks.
"""

from __future__ import annotations

import importlib

from .. import methods as _methods

# the inpaint module imports numpy only at its top; the function is bound now so that `inpaint` here stays the
# function even after the submodule art_ai_addon.repair.inpaint was imported (that import sets the package
# attribute to the module, and then no lazy lookup would run)
from .inpaint import inpaint

METHODS = _methods.names("inpaint")
_LAZY = {"detect_damage": ".detect"}

__all__ = ["detect_damage", "inpaint", "METHODS"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
