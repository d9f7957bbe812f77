"""Repair: find damage (alone or against another version of the picture) and fill it.

`detect_damage` returns a float mask (H, W) in [0, 1]; `inpaint` fills where a mask is white with
OpenCV (telea, ns), multi-scale PatchMatch (patch), Deep Image Prior (dip), LaMa (lama) or per hole (auto).
"""

from __future__ import annotations

from .detect import detect_damage
from .inpaint import METHODS, inpaint

__all__ = ["detect_damage", "inpaint", "METHODS"]
