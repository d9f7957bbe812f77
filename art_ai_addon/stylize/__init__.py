"""Stylize: give an image the look of a style image.

Methods: "gatys" (optimisation on CNN features, VGG19 or a built-in random encoder), "fast"
(a trained Johnson transformer network), "arbitrary" (Magenta's pretrained any-style network, one pass), "adain"
(arbitrary style in one pass, AdaIN weights), "color" (colour distribution only). Every method keeps alpha,
honours `mask`, `strength` and `preserve_color`.
"""

from __future__ import annotations

from .. import methods as _methods
from .engine import stylize, train_fast_style
from .layers import stylize_layers
from .temporal import stylize_sequence

METHODS = _methods.names("stylize")

__all__ = ["METHODS", "stylize", "stylize_layers", "train_fast_style", "stylize_sequence"]
