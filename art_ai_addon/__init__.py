"""Art AI engine: the public Python API (no bpy here; see art_ai_addon/blender for Blender).

`import art_ai_addon` (and every `from ..errors import ...` in the Blender layer) imports nothing optional: OpenCV
and PyTorch come in only inside the functions that need them; repair loads on first use.
"""

from __future__ import annotations

import importlib

from .errors import ArtAIError, Cancelled, InputError, ModelError, NotAvailableError
from .imageio import read_image, write_image
# the feature packages import numpy only at their top; bound now so that `art.stylize` stays the function even after
# a submodule such as art_ai_addon.stylize.temporal was imported (that import sets the package attribute)
from .passes import read_passes
from .stylize import stylize, stylize_layers, stylize_sequence, train_fast_style
from .stylize.propagate import propagate_keyframes
from .texture import make_seamless, pbr_maps, synthesize_texture
from .upscale import upscale

__version__ = "0.1.0"

_LAZY = {"detect_damage": "repair", "inpaint": "repair"}  # detection needs OpenCV at its module's top

__all__ = ["ArtAIError", "Cancelled", "InputError", "ModelError", "NotAvailableError", "read_image", "write_image",
           "stylize", "stylize_layers", "read_passes", "stylize_sequence", "train_fast_style", "synthesize_texture",
           "make_seamless", "pbr_maps", "detect_damage", "inpaint", "propagate_keyframes", "upscale"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
