"""ARTAI_OT_upscale_material: upscaled copies of every Image Texture of the active material, nodes re-pointed."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty

from ...errors import InputError
from .. import bridge
from ..jobs import JobOperator
from ..props import UPSCALE_METHODS, call_config, engine_settings
from ..runner import EngineCall


def _is_normal(node, image) -> bool:
    """Feeds a Normal Map node, or is named like a normal map."""
    for link in node.outputs["Color"].links:
        if link.to_node.type == "NORMAL_MAP":
            return True
    return "normal" in image.name.lower() or "nrm" in image.name.lower()


class ARTAI_OT_upscale_material(JobOperator, bpy.types.Operator):
    """Make upscaled copies of every Image Texture node's image of the material and re-point the nodes to them:
    colour maps by the method, data maps (Non-Color) as data, normal maps renormalised; one undo step"""

    bl_idname = "art_ai.upscale_material"
    bl_label = "Upscale Material Textures"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Upscale Material"

    material: StringProperty(name="Material", description="Material name (default: the active object's active one)")
    scale: FloatProperty(name="Scale", min=1.0, max=8.0, default=2.0, description="How many times larger")
    method: EnumProperty(name="Method", items=UPSCALE_METHODS, default="AUTO")
    tileable: BoolProperty(name="Tileable", default=True,
                           description="The textures tile: keep them tiling (no seam at the edges)")

    @classmethod
    def poll(cls, context):
        return True

    def _material(self, context):
        if self.material:
            mat = bpy.data.materials.get(self.material)
            if mat is None:
                raise InputError(f"material: there is no material {self.material!r}")
            return mat
        obj = context.object
        mat = obj.active_material if obj is not None else None
        if mat is None:
            raise InputError("material: select an object with a material, or name one")
        return mat

    def prepare(self, context):
        mat = self._material(context)
        if not mat.use_nodes or mat.node_tree is None:
            raise InputError(f"material {mat.name!r} has no nodes")
        maps: dict = {}
        kinds: dict[str, str] = {}
        self._nodes: dict[str, list[str]] = {}
        self._data: dict[str, tuple[str, bool]] = {}
        for node in mat.node_tree.nodes:
            image = getattr(node, "image", None) if node.type == "TEX_IMAGE" else None
            if image is None:
                continue
            kind = "normal" if _is_normal(node, image) else "data" if bridge.is_data_image(image) else "color"
            self._nodes.setdefault(image.name, []).append(node.name)
            if image.name not in maps:
                maps[image.name] = bridge.image_to_array(image, context.scene).copy()
                kinds[image.name] = kind
                self._data[image.name] = (kind, bool(image.is_float))
        if not maps:
            raise InputError(f"material {mat.name!r} has no Image Texture node with an image")
        self._mat = mat.name
        settings = engine_settings(context)
        return EngineCall("upscale_maps", {"maps": maps, "kinds": kinds, "scale": self.scale,
                                           "method": self.method.lower(), "tileable": self.tileable,
                                           "device": settings["device"], "models_dir": settings["models_dir"]},
                          method=self.method.lower(), config=call_config(settings))

    def finish(self, context, result):
        mat = bpy.data.materials.get(self._mat)
        if mat is None:
            raise InputError(f"material {self._mat!r} was removed while upscaling")
        made = []
        for src_name, (kind, is_float) in self._data.items():
            src = bpy.data.images.get(src_name)
            img = bridge.array_to_image(result[src_name], f"{src_name}.upscaled", data=kind != "color",
                                        float_buffer=is_float and kind == "color", source=src)
            if src is not None and kind != "color":
                img.colorspace_settings.name = src.colorspace_settings.name
            for node_name in self._nodes[src_name]:
                node = mat.node_tree.nodes.get(node_name)
                if node is not None:
                    node.image = img
            made.append(img.name)
        self.report({"INFO"}, f"Upscaled {len(made)} texture(s) of '{mat.name}': {', '.join(made)}")
