"""ARTAI_OT_keyframe_paint: Copy this frame's render to a new image to paint on, and register it as a keyframe."""

from __future__ import annotations

import bpy

from ...errors import ArtAIError


class ARTAI_OT_keyframe_paint(bpy.types.Operator):
    """Render this frame (or take the last render), copy it to a new image ready to paint on, and register it as a
    painted keyframe for Propagate"""

    bl_idname = "art_ai.keyframe_paint"
    bl_label = "Paint This Frame"
    bl_options = {"REGISTER", "UNDO"}

    render: bpy.props.BoolProperty(name="Render First", default=True,
                                   description="Render the current frame first (else use the last Render Result)")

    def execute(self, context):
        from .. import bridge

        scene = context.scene
        frame = scene.frame_current
        try:
            if self.render:
                bpy.ops.render.render(write_still=False)
            arr = bridge.image_to_array(bridge.find_image("Render Result", "render"), scene).copy()
        except (ArtAIError, RuntimeError) as exc:
            self.report({"ERROR"}, f"Paint This Frame: {exc}")
            return {"CANCELLED"}
        name = f"keyframe_{frame:04d}"
        img = bridge.array_to_image(arr, name)
        keys = scene.art_ai.keyframes
        entry = next((k for k in keys if k.frame == frame), None) or keys.add()
        entry.frame, entry.image, entry.path = frame, img, ""
        scene.art_ai.keyframe_index = list(keys).index(entry)
        scene.art_ai.stylize_mode = "KEYFRAMES"
        bridge.show_in_editor(context, img)
        self.report({"INFO"}, f"'{img.name}' is frame {frame}'s render: paint on it (Texture Paint, or save it and "
                              "paint elsewhere), then Propagate")
        return {"FINISHED"}
