"""Scene settings (`scene.art_ai`) and add-on preferences."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

_pkg = __package__ or ""
# the add-on's own package (bl_ext.<repo>.art_ai inside Blender); "art_ai" when imported from the repository
ADDON_PACKAGE = _pkg.rsplit(".art_ai_addon", 1)[0] if ".art_ai_addon" in _pkg else "art_ai"

STYLIZE_METHODS = [
    ("AUTO", "Auto", "Fast if a model is given, AdaIN if its weights are installed, else Gatys"),
    ("GATYS", "Gatys (optimisation)", "Best quality, slow; uses VGG19 when installed"),
    ("FAST", "Fast (feed-forward)", "One pass of a trained style network (needs a model)"),
    ("ADAIN", "AdaIN (arbitrary style)", "One pass for any style image (needs AdaIN weights)"),
    ("COLOR", "Colour transfer", "Only the style's colour palette; instant, no PyTorch needed"),
]
TEXTURE_METHODS = [
    ("AUTO", "Auto", "A trained GAN for this exemplar if there is one, else patch"),
    ("PATCH", "Patch", "Patch-based synthesis: quick, keeps the exemplar's detail"),
    ("NEURAL", "Neural", "Gram-matrix synthesis on CNN features (slower)"),
    ("GAN", "GAN", "Train a periodic spatial GAN on the exemplar, then generate any size"),
]
INPAINT_METHODS = [
    ("AUTO", "Auto", "Thin scratches with a biharmonic fill, large holes with PatchMatch"),
    ("TELEA", "Telea", "OpenCV fast marching: thin scratches"),
    ("NS", "Navier-Stokes", "OpenCV Navier-Stokes: thin scratches"),
    ("SMOOTH", "Smooth (biharmonic)", "Smoothest continuation of the surroundings: thin scratches, text"),
    ("PATCH", "PatchMatch", "Copies texture into large holes"),
    ("DIP", "Deep Image Prior", "Fits an untrained CNN to the known pixels (slow, no weights)"),
    ("LAMA", "LaMa", "Large-mask inpainting network (needs big-lama in the model store)"),
]


def _image_items_poll(_self, image):
    return True


class ArtAISettings(bpy.types.PropertyGroup):
    """Panel state; operators take every input as their own property, the panels copy these in."""

    # job state (written by the job runner on the main thread)
    job_running: BoolProperty(name="Running", default=False, options={"SKIP_SAVE"})
    job_label: StringProperty(name="Job", default="", options={"SKIP_SAVE"})
    job_progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR", options={"SKIP_SAVE"})
    job_message: StringProperty(name="Message", default="", options={"SKIP_SAVE"})

    # stylize
    style_image: PointerProperty(name="Style", type=bpy.types.Image, poll=_image_items_poll,
                                 description="Image whose look is transferred")
    style_path: StringProperty(name="Style File", subtype="FILE_PATH",
                               description="Style image file (used when no style image datablock is chosen)")
    stylize_method: EnumProperty(name="Method", items=STYLIZE_METHODS, default="AUTO")
    strength: FloatProperty(name="Strength", min=0.0, max=1.0, default=1.0, subtype="FACTOR")
    preserve_color: BoolProperty(name="Preserve Colours", default=False,
                                 description="Transfer the style on brightness only and keep the image's colours")
    stylize_mask: PointerProperty(name="Mask", type=bpy.types.Image,
                                  description="Stylize only where this image is white (optional)")
    model: StringProperty(name="Model", subtype="FILE_PATH",
                          description="Fast-style checkpoint: a .pth file or a name in the model store")
    steps: IntProperty(name="Steps", min=0, max=5000, default=0,
                       description="Optimisation steps for Gatys/DIP/GAN (0 = the method's default)")
    seed: IntProperty(name="Seed", min=0, default=0)
    preview: BoolProperty(name="Preview", default=False, description="Run at a quarter of the size, quickly")
    temporal: BoolProperty(name="Temporal Coherence", default=True,
                           description="On animations, blend each frame with the previous result warped by "
                                       "motion, to stop flicker")
    stylize_on_render: BoolProperty(
        name="Stylize on Render", default=False,
        description="Stylize every rendered frame and save <frame>_stylized beside the normal output")

    # textures
    texture_method: EnumProperty(name="Method", items=TEXTURE_METHODS, default="AUTO")
    texture_width: IntProperty(name="Width", min=8, max=16384, default=1024)
    texture_height: IntProperty(name="Height", min=8, max=16384, default=1024)
    tileable: BoolProperty(name="Tileable", default=True)
    normal_strength: FloatProperty(name="Normal Strength", min=0.0, max=10.0, default=1.0)
    use_displacement: BoolProperty(name="Displacement", default=False)

    # repair
    inpaint_method: EnumProperty(name="Method", items=INPAINT_METHODS, default="AUTO")
    sensitivity: FloatProperty(name="Sensitivity", min=0.0, max=1.0, default=0.5, subtype="FACTOR")
    reference: PointerProperty(name="Reference", type=bpy.types.Image,
                               description="Another version of the same picture to compare against (optional)")
    damage_mask: PointerProperty(name="Mask", type=bpy.types.Image,
                                 description="Damage mask (white = repair); empty = detect first")


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

    def draw(self, context):
        layout = self.layout
        col = layout.column()
        col.prop(self, "device")
        col.prop(self, "models_dir")
        col.prop(self, "memory_budget_mb")
        col.prop(self, "threads")
        try:
            from . import models_ui
        except ImportError:
            return
        box = layout.box()
        box.label(text="Models", icon="FILE_3D")
        models_ui.draw_models(box, context)
        box = layout.box()
        box.label(text="Dependencies", icon="SCRIPT")
        models_ui.draw_dependencies(box, context)


def preferences(context=None):
    """The add-on preferences, or None when running from the repository without the extension enabled."""
    ctx = context or bpy.context
    addon = ctx.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


def engine_settings(context=None) -> dict:
    """What the engine needs from the preferences: device, models folder, tile budget, threads."""
    prefs = preferences(context)
    if prefs is None:
        return {"device": "auto", "models_dir": None, "memory_budget_mb": 4096, "threads": 0}
    models_dir = bpy.path.abspath(prefs.models_dir) if prefs.models_dir else None
    if not models_dir:
        try:
            models_dir = bpy.utils.extension_path_user(ADDON_PACKAGE, path="models", create=True)
        except (ValueError, RuntimeError):
            models_dir = None
    return {"device": prefs.device.lower(), "models_dir": models_dir, "memory_budget_mb": prefs.memory_budget_mb,
            "threads": prefs.threads}


classes = (ArtAISettings, ArtAIPreferences)
