"""ARTAI_OT_make_seamless: Make an image tile without visible seams, keeping its size."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty

from ._common import _ImageJob


class ARTAI_OT_make_seamless(_ImageJob, bpy.types.Operator):
    """Make an image tile without visible seams, keeping its size"""

    bl_idname = "art_ai.make_seamless"
    bl_label = "Make Seamless"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Make seamless"

    image: StringProperty(name="Image")
    output: StringProperty(name="Output", description="Result image name (default <image>.seamless)")

    def prepare(self, context):
        return self._call("make_seamless", image=self._begin(context))

    def finish(self, context, result):
        img = self._output(context, result, "seamless")
        note = self._engine.info.get("note")
        self.report({"INFO"}, f"Seamless image '{img.name}'" + (f"; {note}" if note else ""))
