"""Preferences > Add-ons > Art AI: device, folders, budgets, the PyTorch Python, models."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from .props import ADDON_PACKAGE


class ArtAIPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    device: EnumProperty(
        name="Device",
        items=[("AUTO", "Auto", "CUDA, then Apple Metal (MPS), then CPU"), ("CUDA", "CUDA", "NVIDIA GPU"),
               ("MPS", "Metal (MPS)", "Apple GPU"), ("CPU", "CPU", "Processor only")],
        default="AUTO")
    models_dir: StringProperty(name="Models Folder", subtype="DIR_PATH",
                               description="Where model weights live (empty = this extension's user folder)")
    memory_budget_mb: IntProperty(name="Memory Budget (MB)", min=256, max=262144, default=4096,
                                  description="Large images are processed in tiles that fit this budget")
    threads: IntProperty(name="CPU Threads", min=0, max=256, default=0, description="0 = all cores")
    max_megapixels: IntProperty(
        name="Max Image Pixels (millions)", min=0, max=4096, default=0,
        description="Images that would decode to more pixels are refused before anything is read (0 = from the "
                    "memory available, 268 at most)")
    torch_python: StringProperty(
        name="PyTorch Python", subtype="FILE_PATH",
        description="A Python interpreter that has PyTorch (e.g. a venv's bin/python); the methods that need "
                    "PyTorch run there, in their own process. The environment variable ART_AI_TORCH_PYTHON wins")

    def draw(self, context):
        from . import deps_ui, models_ui

        layout = self.layout
        col = layout.column()
        col.prop(self, "device")
        col.prop(self, "models_dir")
        col.prop(self, "memory_budget_mb")
        col.prop(self, "threads")
        col.prop(self, "max_megapixels")
        box = layout.box()
        box.label(text="PyTorch", icon="SCRIPT")
        box.prop(self, "torch_python")
        deps_ui.draw_environment(box, context)
        box = layout.box()
        box.label(text="Models", icon="FILE_3D")
        models_ui.draw_models(box, context)


classes = (ArtAIPreferences,)
