"""Art AI engine: the public Python API (no bpy here; see art_ai_addon/blender for Blender)."""

from .errors import ArtAIError, Cancelled, InputError, ModelError, NotAvailableError
from .imageio import read_image, write_image
from .repair import detect_damage, inpaint
from .stylize import stylize, train_fast_style
from .texture import make_seamless, pbr_maps, synthesize_texture

__version__ = "0.1.0"

__all__ = [
    "ArtAIError", "Cancelled", "InputError", "ModelError", "NotAvailableError",
    "read_image", "write_image",
    "stylize", "train_fast_style", "synthesize_texture", "make_seamless", "pbr_maps", "detect_damage", "inpaint",
]
