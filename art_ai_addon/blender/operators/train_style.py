"""ARTAI_OT_train_style: train a fast style network on your own renders, saved in the model store."""

from __future__ import annotations

import bpy
from bpy.props import IntProperty, StringProperty

from ...errors import InputError
from .. import bridge
from ._common import _ImageJob, load_file_array


class ARTAI_OT_train_style(_ImageJob, bpy.types.Operator):
    """Train a fast style network for one style on your own renders; it is saved in the model store"""

    bl_idname = "art_ai.train_style"
    bl_label = "Train Fast Style"
    bl_options = {"REGISTER"}
    job_label = "Train style"

    image: StringProperty(name="Image", description="A render to train on (more: list them in 'images')")
    images: StringProperty(name="Images", description="Comma-separated image names to train on (optional)")
    style: StringProperty(name="Style", description="Style image datablock name")
    style_path: StringProperty(name="Style File", subtype="FILE_PATH")
    name: StringProperty(name="Name", description="Model name in the store (default: from the style)")
    steps: IntProperty(name="Steps", min=1, default=2000, description="Training steps (thousands on a GPU)")

    def prepare(self, context):
        first = self._begin(context)
        contents = [first] + [bridge.image_to_array(bridge.find_image(n.strip(), "images"), context.scene).copy()
                              for n in self.images.split(",") if n.strip()]
        if self.style:
            style = bridge.image_to_array(bridge.find_image(self.style, "style"), context.scene).copy()
        elif self.style_path:
            style = load_file_array(self.style_path, "style")
        else:
            raise InputError("style: choose a style image (a datablock or a file)")
        return self._call("train_fast_style", style=style, content_images=contents, steps=self.steps,
                          name=self.name or None, models_dir=self._settings["models_dir"],
                          device=self._settings["device"])

    def finish(self, context, path):
        self.report({"INFO"}, f"Trained style model saved as {path}; use it with Method: Fast, Model: {path.stem}")
