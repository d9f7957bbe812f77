"""ARTAI_OT_keyframe_remove: Remove the active painted keyframe from the list (its image stays)."""

from __future__ import annotations

import bpy


class ARTAI_OT_keyframe_remove(bpy.types.Operator):
    """Remove the active painted keyframe from the list (its image is kept)"""

    bl_idname = "art_ai.keyframe_remove"
    bl_label = "Remove Keyframe"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.art_ai.keyframes) > 0

    def execute(self, context):
        s = context.scene.art_ai
        i = min(s.keyframe_index, len(s.keyframes) - 1)
        s.keyframes.remove(i)
        s.keyframe_index = max(0, min(i, len(s.keyframes) - 1))
        return {"FINISHED"}
