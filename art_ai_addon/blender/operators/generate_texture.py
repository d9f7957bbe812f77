"""ARTAI_OT_generate_texture: Synthesize a larger, tileable texture from an exemplar image."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from ..props import TEXTURE_METHODS
from ._common import _ImageJob


class ARTAI_OT_generate_texture(_ImageJob, bpy.types.Operator):
    """Synthesize a larger, tileable texture from an exemplar image"""

    bl_idname = "art_ai.generate_texture"
    bl_label = "Generate Texture"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Generate texture"

    image: StringProperty(name="Exemplar")
    width: IntProperty(name="Width", min=8, max=16384, default=1024)
    height: IntProperty(name="Height", min=8, max=16384, default=1024)
    method: EnumProperty(name="Method", items=TEXTURE_METHODS, default="AUTO")
    tileable: BoolProperty(name="Tileable", default=True)
    seed: IntProperty(name="Seed", min=0, default=0)
    steps: IntProperty(name="Steps", min=0, default=0, description="0 = the method's default")
    output: StringProperty(name="Output", description="Result image name (default <image>.texture)")

    def prepare(self, context):
        exemplar = self._begin(context, "exemplar")
        options = {"models_dir": self._settings["models_dir"], "device": self._settings["device"],
                   "memory_mb": self._settings["memory_mb"]}
        if self.steps:
            options["steps"] = self.steps
        method = self.method.lower()
        return self._call("synthesize_texture", exemplar=exemplar, size=(self.height, self.width),
                          method=method, tileable=self.tileable, seed=self.seed, **options)

    def finish(self, context, result):
        img = self._output(context, result, "texture")
        note = self._engine.info.get("note")
        used = self._engine.info.get("method", self.method.lower())
        self.report({"INFO"}, f"Texture '{img.name}' ({img.size[0]}x{img.size[1]}, {used})"
                    + (f"; {note}" if note else ""))
