"""ARTAI_OT_inpaint: Fill the masked (or detected) damage so the repair is invisible."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from ...errors import InputError
from .. import bridge
from ..props import INPAINT_METHODS
from ._common import _ImageJob


class ARTAI_OT_inpaint(_ImageJob, bpy.types.Operator):
    """Fill the masked (or detected) damage so the repair is invisible"""

    bl_idname = "art_ai.inpaint"
    bl_label = "Inpaint"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Inpaint"

    image: StringProperty(name="Image")
    mask: StringProperty(name="Mask", description="Mask image name (white = fill); empty = detect first")
    reference: StringProperty(name="Reference", description="With no mask: compare against this version")
    sensitivity: FloatProperty(name="Sensitivity", min=0.0, max=1.0, default=0.5, subtype="FACTOR")
    method: EnumProperty(name="Method", items=INPAINT_METHODS, default="AUTO")
    steps: IntProperty(name="Steps", min=0, default=0, description="0 = the method's default (DIP)")
    seed: IntProperty(name="Seed", min=0, default=0)
    output: StringProperty(name="Output", description="Result image name (default <image>.inpainted)")

    def prepare(self, context):
        arr = self._begin(context)
        mask = None
        if self.mask:
            mask = bridge.image_to_array(bridge.find_image(self.mask, "mask"), context.scene)
            if mask.shape[:2] != arr.shape[:2]:
                raise InputError(f"mask: {self.mask!r} is {mask.shape[1]}x{mask.shape[0]} but the image is "
                                 f"{arr.shape[1]}x{arr.shape[0]}; use a mask of the same size")
        ref = None
        if self.reference:
            ref = bridge.image_to_array(bridge.find_image(self.reference, "reference"), context.scene)
        options = {"seed": self.seed, "models_dir": self._settings["models_dir"], "device": self._settings["device"]}
        if self.steps:
            options["steps"] = self.steps
        method = self.method.lower()
        return self._call("repair", image=arr, mask=mask, reference=ref, sensitivity=self.sensitivity,
                          method=method, **options)

    def finish(self, context, result):
        img = self._output(context, result, "inpainted")
        self.report({"INFO"}, f"Inpainted into '{img.name}'")
