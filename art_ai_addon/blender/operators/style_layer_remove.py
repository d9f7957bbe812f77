"""ARTAI_OT_style_layer_remove: Remove the active style layer."""

from __future__ import annotations

import bpy


class ARTAI_OT_style_layer_remove(bpy.types.Operator):
    """Remove the active style layer"""

    bl_idname = "art_ai.style_layer_remove"
    bl_label = "Remove Style Layer"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.art_ai.style_layers) > 0

    def execute(self, context):
        s = context.scene.art_ai
        i = min(s.style_layer_index, len(s.style_layers) - 1)
        s.style_layers.remove(i)
        s.style_layer_index = max(0, min(i, len(s.style_layers) - 1))
        return {"FINISHED"}
