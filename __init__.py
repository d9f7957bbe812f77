"""Art AI Blender extension entry point (the engine lives in art_ai_addon/)."""

from .art_ai_addon.blender import register, unregister

__all__ = ["register", "unregister"]
