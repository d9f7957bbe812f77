"""ARTAI_OT_stylize: Give an image or render the look of a style image (result in a new image)."""

from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ...errors import InputError
from .. import bridge
from ..props import STYLIZE_METHODS
from ._common import _ImageJob, downscale, load_file_array


class ARTAI_OT_stylize(_ImageJob, bpy.types.Operator):
    """Give an image or render the look of a style image (result in a new image)"""

    bl_idname = "art_ai.stylize"
    bl_label = "Stylize"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Stylize"

    image: StringProperty(name="Image", description="Image to stylize ('Render Result' for the last render)")
    style: StringProperty(name="Style", description="Style image datablock name")
    style_path: StringProperty(name="Style File", subtype="FILE_PATH", description="Style image file")
    method: EnumProperty(name="Method", items=STYLIZE_METHODS, default="AUTO")
    strength: FloatProperty(name="Strength", min=0.0, max=1.0, default=1.0, subtype="FACTOR")
    preserve_color: BoolProperty(name="Preserve Colours", default=False)
    mask: StringProperty(name="Mask", description="Mask image name: stylize only where it is white (optional)")
    model: StringProperty(name="Model", description="Fast-style checkpoint path or model store name")
    steps: IntProperty(name="Steps", min=0, default=0, description="0 = the method's default")
    seed: IntProperty(name="Seed", min=0, default=0)
    preview: BoolProperty(name="Preview", default=False, description="Quarter size, for a quick look")
    output: StringProperty(name="Output", description="Result image name (default <image>.stylized)")
    use_layers: BoolProperty(name="Use Style Layers", default=False,
                             description="On the Render Result: the scene's style layers, keep edges and depth scale "
                                         "(Render Properties > Art AI Stylize), from the render's passes")

    def prepare(self, context):
        content = self._begin(context)
        if self.use_layers and bridge.is_render_result(self._src):
            call = self._layered(context, content)
            if call is not None:
                return call
        if self.style:
            style = bridge.image_to_array(bridge.find_image(self.style, "style"), context.scene)
        elif self.style_path:
            style = load_file_array(self.style_path, "style")
        else:
            raise InputError("style: choose a style image (a datablock or a file)")
        mask = None
        if self.mask:
            mask = bridge.image_to_array(bridge.find_image(self.mask, "mask"), context.scene)
        if self.preview:
            content = downscale(content, 4)
            mask = downscale(mask, 4) if mask is not None else None
        options = {"seed": self.seed, "models_dir": self._settings["models_dir"],
                   "memory_mb": self._settings["memory_mb"]}
        if self.steps:
            options["steps"] = self.steps
        if self.model:
            options["model"] = bpy.path.abspath(self.model) if os.sep in self.model else self.model
        method = self.method.lower()
        return self._call("stylize", content=content, style=style, method=method, strength=self.strength,
                          preserve_color=self.preserve_color, mask=mask, device=self._settings["device"], **options)

    def _layered(self, context, content):
        """The style-layers call on the Render Result, or None when the scene has no layers (plain stylize then)."""
        from ..style_layers import engine_layers, read_render_passes, scene_style_layers

        scene = context.scene
        base = {"style": None, "style_path": self.style_path, "method": self.method, "strength": self.strength}
        if self.style:
            base["style"] = bridge.image_to_array(bridge.find_image(self.style, "style"), scene)
        layers = scene_style_layers(scene, base=base)
        if not layers:
            return None
        passes = read_render_passes(scene, layers)
        if passes.get("depth") is None and (scene.art_ai.keep_edges > 0 or scene.art_ai.depth_scale):
            raise InputError("the Render Result has no Depth pass: turn it on in View Layer Properties > Passes, "
                             "render again (F12), then stylize")
        specs = engine_layers(scene, layers, passes, content.shape)
        for spec in specs:
            spec.update({"seed": self.seed, "models_dir": self._settings["models_dir"]})
            if self.steps:
                spec["steps"] = self.steps
        from ..props import call_config
        from ..render import layers_method
        from ..runner import EngineCall

        kwargs = dict(content=content, layers=specs, keep_edges=scene.art_ai.keep_edges, depth=passes.get("depth"),
                      normal=passes.get("normal"), depth_scale=scene.art_ai.depth_scale,
                      device=self._settings["device"])
        self._engine = EngineCall("stylize_layers", kwargs, method=layers_method(specs),
                                  config=call_config(self._settings))
        return self._engine

    def finish(self, context, result):
        suffix = "preview" if self.preview else "stylized"
        img = self._output(context, result, suffix)
        note = self._engine.info.get("note")
        used = self._engine.info.get("method", self.method.lower())
        self.report({"INFO"}, f"Stylized with {used} into '{img.name}'" + (f"; {note}" if note else ""))
