"""ARTAI_OT_detect_damage: Find scratches, cracks, spots and holes; the mask can be corrected by painting."""

from __future__ import annotations

import bpy
import numpy as np
from bpy.props import FloatProperty, StringProperty

from .. import bridge
from ._common import _ImageJob


class ARTAI_OT_detect_damage(_ImageJob, bpy.types.Operator):
    """Find scratches, cracks, spots and holes; the mask can be corrected by painting"""

    bl_idname = "art_ai.detect_damage"
    bl_label = "Detect Damage"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Detect damage"

    image: StringProperty(name="Image")
    reference: StringProperty(name="Reference", description="Another version of the picture (optional)")
    sensitivity: FloatProperty(name="Sensitivity", min=0.0, max=1.0, default=0.5, subtype="FACTOR")
    output: StringProperty(name="Output", description="Mask image name (default <image>.damage)")

    def prepare(self, context):
        arr = self._begin(context)
        ref = None
        if self.reference:
            ref = bridge.image_to_array(bridge.find_image(self.reference, "reference"), context.scene)
        return self._call("detect_damage", image=arr, reference=ref, sensitivity=self.sensitivity)

    def finish(self, context, mask):
        img = self._output(context, mask, "damage", data=True)
        # the Repair panel's Mask field: the next Inpaint repairs what was just found (and Edit Mask paints it)
        context.scene.art_ai.damage_mask = img
        share = float((np.asarray(mask) > 0.5).mean()) * 100
        self.report({"INFO"}, f"Damage mask '{img.name}': {share:.1f}% of the pixels")
