"""ARTAI_OT_upscale: Make the image larger with Real-ESRGAN (or Lanczos), into a new image."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty

from ..props import UPSCALE_METHODS
from ._common import _ImageJob


class ARTAI_OT_upscale(_ImageJob, bpy.types.Operator):
    """Make the image 1-8x larger with Real-ESRGAN (adds detail; needs PyTorch) or Lanczos, into a new image"""

    bl_idname = "art_ai.upscale"
    bl_label = "Upscale"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Upscale"

    image: StringProperty(name="Image")
    scale: FloatProperty(name="Scale", min=1.0, max=8.0, default=4.0, description="How many times larger")
    method: EnumProperty(name="Method", items=UPSCALE_METHODS, default="AUTO")
    tileable: BoolProperty(name="Tileable", default=False,
                           description="The image is a tiling texture: keep it tiling (no seam at the edges)")
    output: StringProperty(name="Output", description="Result image name (default <image>.upscaled)")

    def prepare(self, context):
        arr = self._begin(context)
        s = self._settings
        return self._call("upscale", image=arr, scale=self.scale, method=self.method.lower(), tileable=self.tileable,
                          device=s["device"], models_dir=s["models_dir"], memory_mb=float(s["memory_mb"]))

    def finish(self, context, result):
        img = self._output(context, result, "upscaled")
        info = getattr(self, "_engine", None)
        used = (info.info.get("method") if info is not None else "") or self.method.lower()
        note = info.info.get("note") if info is not None else ""
        self.report({"WARNING"} if note else {"INFO"},
                    note or f"Upscaled into '{img.name}' ({img.size[0]}x{img.size[1]}, {used})")
