"""ARTAI_OT_edit_mask: Show the damage mask in this Image Editor in paint mode, to correct it with a brush."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty

from ...errors import ArtAIError
from .. import bridge


class ARTAI_OT_edit_mask(bpy.types.Operator):
    """Show the damage mask in this Image Editor in paint mode, to correct it with a brush"""

    bl_idname = "art_ai.edit_mask"
    bl_label = "Paint Mask"
    bl_options = {"REGISTER"}

    mask: StringProperty(name="Mask")

    @classmethod
    def poll(cls, context):
        if getattr(context.space_data, "type", "") != "IMAGE_EDITOR":
            cls.poll_message_set("Run this from the Image Editor")
            return False
        return True

    def execute(self, context):
        try:
            img = bridge.find_image(self.mask, "mask")
        except ArtAIError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        space = getattr(context, "space_data", None)
        if space is None or space.type != "IMAGE_EDITOR":
            self.report({"ERROR"}, "Run this from the Image Editor")
            return {"CANCELLED"}
        space.image = img
        space.ui_mode = "PAINT"
        return {"FINISHED"}
