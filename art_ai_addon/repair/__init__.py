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
_LAZY: dict[str, str] = {}
DETECT_OPTIONS = {"grow": (0, 256)}  # detect_damage's options: whole numbers in these ranges


def detect_damage(image, *, reference=None, sensitivity: float = 0.5, progress=None, cancel=None, **options):
    """Float mask (H, W) in [0, 1], 1 where the image looks damaged (see repair/detect.py's detect_damage).

    Options are checked here, before OpenCV is loaded: a misspelt keyword (`sensitivty=0.9`) or an option out of
    range (`grow=-3`, `grow=10**6`) is an InputError naming it, never silently ignored or a raw OpenCV error."""
    import difflib

    from ..errors import InputError

    for key in options:
        if key not in DETECT_OPTIONS:
            known = ["reference", "sensitivity", "progress", "cancel", *DETECT_OPTIONS]
            hint = difflib.get_close_matches(key, known, 1)
            raise InputError(f"{key}: not an option of detect_damage" + (f" (did you mean {hint[0]!r}?)" if hint
                                                                          else "") + f"; it takes {', '.join(known)}")
        lo, hi = DETECT_OPTIONS[key]
        options[key] = _methods.check_number(options[key], key, lo, hi, whole=True,
                                             hint="pixels to widen the mask by" if key == "grow" else "")
    import numpy as np

    from ..core import check_work_memory

    if isinstance(image, np.ndarray) and image.ndim >= 2:
        check_work_memory("detect_damage", image.shape, "image")
    from .detect import detect_damage as detect

    return detect(image, reference=reference, sensitivity=sensitivity, progress=progress, cancel=cancel, **options)

__all__ = ["detect_damage", "inpaint", "METHODS"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
