"""ARTAI_OT_create_pbr_material: height, normal, roughness and AO maps, and a material on the selected objects."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty

from ...errors import ArtAIError
from .. import bridge
from ._common import _ImageJob


class ARTAI_OT_create_pbr_material(_ImageJob, bpy.types.Operator):
    """Derive height, normal, roughness and AO maps and build a material on the selected objects"""

    bl_idname = "art_ai.create_pbr_material"
    bl_label = "Create PBR Material"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "PBR material"

    image: StringProperty(name="Albedo")
    name: StringProperty(name="Name", description="Material name (default <image>.material)")
    normal_strength: FloatProperty(name="Normal Strength", min=0.0, max=10.0, default=1.0)
    displacement: BoolProperty(name="Displacement", default=False, description="Wire the height map to "
                               "a Displacement node")
    assign: BoolProperty(name="Assign", default=True, description="Assign to the selected objects")

    def prepare(self, context):
        albedo = self._begin(context, "albedo")
        # the render changes with the next F12: the material keeps the pixels its maps were made from
        self._albedo = albedo.copy() if bridge.is_render_result(self._src) else None
        return self._call("pbr_maps", albedo=albedo, strength=self.normal_strength)

    def finish(self, context, maps):
        from .. import materials

        src = bpy.data.images.get(self._src_name)
        if src is None:
            raise ArtAIError(f"albedo: the image {self._src_name!r} was removed while the maps were made")
        base = self.name or f"{self._src_name}.material"
        if self._albedo is not None:
            src = self._output(context, self._albedo, "albedo", name=f"{base}.albedo")
        images = {}
        for key, arr in maps.items():
            images[key] = bridge.array_to_image(arr, f"{base}.{key}", data=True, source=src)
        objects = [o for o in context.selected_objects if o.type == "MESH"] if self.assign else []
        mat = materials.build_pbr_material(base, src, images, normal_strength=self.normal_strength,
                                           displacement=self.displacement, objects=objects)
        self.report({"INFO"}, f"Material '{mat.name}' on {len(objects)} object(s)")
