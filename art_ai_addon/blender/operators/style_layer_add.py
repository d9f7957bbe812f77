"""ARTAI_OT_style_layer_add: Add a style layer (a style for the active object, or for everything else)."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty

from ..props import TARGET_KINDS


class ARTAI_OT_style_layer_add(bpy.types.Operator):
    """Add a style layer for the active object (or a collection, a material, everything else); turns on the
    Cryptomatte, Depth and Normal passes the layers are made from"""

    bl_idname = "art_ai.style_layer_add"
    bl_label = "Add Style Layer"
    bl_options = {"REGISTER", "UNDO"}

    target_kind: EnumProperty(name="Target", items=TARGET_KINDS, default="OBJECT")
    target: StringProperty(name="Name", description="Object, collection or material name (empty: the active one)")

    def execute(self, context):
        from ..style_layers import turn_on_passes

        scene = context.scene
        la = scene.art_ai.style_layers.add()
        la.target_kind = self.target_kind
        kind = self.target_kind
        if kind == "OBJECT":
            la.target_object = bpy.data.objects.get(self.target) if self.target else context.active_object
        elif kind == "COLLECTION":
            la.target_collection = (bpy.data.collections.get(self.target) if self.target
                                    else getattr(context, "collection", None))
        elif kind == "MATERIAL":
            obj = context.active_object
            la.target_material = (bpy.data.materials.get(self.target) if self.target
                                  else getattr(obj, "active_material", None))
        if self.target and kind != "REST" and not la.target():
            scene.art_ai.style_layers.remove(len(scene.art_ai.style_layers) - 1)
            self.report({"ERROR"}, f"No {kind.lower()} named {self.target!r}")
            return {"CANCELLED"}
        scene.art_ai.style_layer_index = len(scene.art_ai.style_layers) - 1
        changed = turn_on_passes(scene)
        if changed:
            self.report({"INFO"}, "Turned on the Cryptomatte, Depth and Normal passes the style layers need")
        return {"FINISHED"}
