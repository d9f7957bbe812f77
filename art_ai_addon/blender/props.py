"""Scene settings (`scene.art_ai`), and the one conversion of settings and preferences into engine options."""

from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .. import methods

_pkg = __package__ or ""
# the add-on's own package (bl_ext.<repo>.art_ai inside Blender); "art_ai" when imported from the repository
ADDON_PACKAGE = _pkg.rsplit(".art_ai_addon", 1)[0] if ".art_ai_addon" in _pkg else "art_ai"

# the enums derive from the one method table (art_ai_addon/methods.py)
STYLIZE_METHODS = methods.enum_items("stylize")
TEXTURE_METHODS = methods.enum_items("texture")
INPAINT_METHODS = methods.enum_items("inpaint")


class ArtAISettings(bpy.types.PropertyGroup):
    """Panel state; operators take every input as their own property, the panels copy these in."""

    # job state (written by the job runner on the main thread)
    job_running: BoolProperty(name="Running", default=False, options={"SKIP_SAVE"})
    job_label: StringProperty(name="Job", default="", options={"SKIP_SAVE"})
    job_progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR", options={"SKIP_SAVE"})
    job_message: StringProperty(name="Message", default="", options={"SKIP_SAVE"})

    # stylize
    style_image: PointerProperty(name="Style", type=bpy.types.Image,
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


def preferences(context=None):
    """The add-on preferences, or None when running from the repository without the extension enabled."""
    ctx = context or bpy.context
    addon = ctx.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


def user_dir(sub: str, create: bool = True) -> str | None:
    """A folder in this extension's user directory (None when not running as an installed extension)."""
    try:
        return bpy.utils.extension_path_user(ADDON_PACKAGE, path=sub, create=create)
    except (ValueError, RuntimeError, AttributeError):
        return None


def engine_settings(context=None) -> dict:
    """What the engine needs from the preferences: device, models folder, memory budget, threads, PyTorch Python."""
    from .runner import torch_python

    prefs = preferences(context)
    base = user_dir("", create=False)
    if prefs is None:
        python, source = torch_python("", base)
        return {"device": "auto", "models_dir": None, "memory_mb": 4096, "threads": 0, "python": python,
                "python_source": source, "max_pixels": 0}
    models_dir = bpy.path.abspath(prefs.models_dir) if prefs.models_dir else None
    if not models_dir:
        models_dir = user_dir("models")
    pref_python = bpy.path.abspath(prefs.torch_python) if prefs.torch_python else ""
    python, source = torch_python(os.path.normpath(pref_python) if pref_python else "", base)
    return {"device": prefs.device.lower(), "models_dir": models_dir, "memory_mb": prefs.memory_budget_mb,
            "threads": prefs.threads, "python": python, "python_source": source,
            "max_pixels": int(prefs.max_megapixels) * 1_000_000}


def call_config(settings: dict) -> dict:
    """The part of the settings that goes with every engine call (applied where the call runs)."""
    return {"threads": settings["threads"], "models_dir": settings["models_dir"], "python": settings["python"],
            "max_pixels": settings["max_pixels"]}


def task_problem(task: str, method_id: str | None, settings: dict) -> str:
    """'' when the task can run here or in the worker; else the one line saying what is missing and how to get it."""
    try:
        needs = methods.needs_of(task, method_id)
    except Exception:  # noqa: BLE001 - an unknown id is the operator's to report
        return ""
    missing = methods.missing_here(needs)
    if not missing or settings.get("python"):
        return ""
    labels = " and ".join(methods.NEED_LABELS[n] for n in missing)
    return f"Needs {labels}: set PyTorch Python in Preferences > Add-ons > Art AI"


classes = (ArtAISettings,)
