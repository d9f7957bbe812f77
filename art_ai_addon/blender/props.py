"""Scene settings (`scene.art_ai`), and the one conversion of settings and preferences into engine options."""

from __future__ import annotations

import os

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from .. import methods

_pkg = __package__ or ""
# the add-on's own package (bl_ext.<repo>.art_ai inside Blender); "art_ai" when imported from the repository
ADDON_PACKAGE = _pkg.rsplit(".art_ai_addon", 1)[0] if ".art_ai_addon" in _pkg else "art_ai"

# the enums derive from the one method table (art_ai_addon/methods.py)
STYLIZE_METHODS = methods.enum_items("stylize")
TEXTURE_METHODS = methods.enum_items("texture")
INPAINT_METHODS = methods.enum_items("inpaint")
UPSCALE_METHODS = methods.enum_items("upscale")


TARGET_KINDS = [("OBJECT", "Object", "One object"), ("COLLECTION", "Collection", "Every object in a collection"),
                ("MATERIAL", "Material", "Every surface with a material"),
                ("REST", "Everything Else", "Every pixel no other layer targets")]


class ArtAIStyleLayer(bpy.types.PropertyGroup):
    """One style layer: a target in the scene and the style it gets on render."""

    target_kind: EnumProperty(name="Target", items=TARGET_KINDS, default="OBJECT")
    target_object: PointerProperty(name="Object", type=bpy.types.Object)
    target_collection: PointerProperty(name="Collection", type=bpy.types.Collection)
    target_material: PointerProperty(name="Material", type=bpy.types.Material)
    style_image: PointerProperty(name="Style", type=bpy.types.Image, description="Image whose look this layer gets")
    style_path: StringProperty(name="Style File", subtype="FILE_PATH",
                               description="Style image file (used when no style image datablock is chosen)")
    method: EnumProperty(name="Method", items=STYLIZE_METHODS, default="AUTO")
    strength: FloatProperty(name="Strength", min=0.0, max=1.0, default=1.0, subtype="FACTOR")
    enabled: BoolProperty(name="Enabled", default=True)

    def target(self) -> str:
        """The target as the CLI spells it ('' when the layer's datablock is not chosen)."""
        if self.target_kind == "REST":
            return "*"
        ref = {"OBJECT": self.target_object, "COLLECTION": self.target_collection,
               "MATERIAL": self.target_material}[self.target_kind]
        if ref is None:
            return ""
        return ref.name if self.target_kind == "OBJECT" else f"{self.target_kind.lower()}:{ref.name}"

    def label(self) -> str:
        return self.target() or f"(choose a {self.target_kind.lower()})"


class ArtAIKeyframe(bpy.types.PropertyGroup):
    """A painted keyframe: a frame number and the artist's painted picture of it (an image or a file)."""

    frame: IntProperty(name="Frame", default=1)
    image: PointerProperty(name="Painted", type=bpy.types.Image, description="The frame as the artist painted it")
    path: StringProperty(name="Painted File", subtype="FILE_PATH",
                         description="The painted frame as a file (used when no image datablock is chosen)")


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
    style_layers: CollectionProperty(type=ArtAIStyleLayer, name="Style Layers",
                                     description="A style per object, collection or material (from the render's "
                                                 "Cryptomatte passes); pixels no layer targets stay as rendered")
    style_layer_index: IntProperty(name="Active Layer", default=0, min=0)
    stylize_mode: EnumProperty(name="Mode", default="STYLE", items=[
        ("STYLE", "Style", "A style image (or style layers) on every rendered frame"),
        ("KEYFRAMES", "Keyframes", "Frames you painted, carried to every frame by the render's UV, object and "
                                   "motion passes")])
    keyframes: CollectionProperty(type=ArtAIKeyframe, name="Keyframes")
    keyframe_index: IntProperty(name="Active Keyframe", default=0, min=0)
    keyframes_dir: StringProperty(name="Output Folder", subtype="DIR_PATH", default="//art_ai_keyframes/",
                                  description="Propagate writes raw/, passes/ and stylized/ frames here")
    keep_edges: FloatProperty(name="Keep Edges", min=0.0, max=1.0, default=0.0, subtype="FACTOR",
                              description="Keep the render's silhouettes and creases (from its depth and normal "
                                          "passes) sharp and in place")
    depth_scale: BoolProperty(name="Stroke Size by Depth", default=False,
                              description="Smaller strokes on far surfaces, as perspective shrinks the scene's own "
                                          "textures (Arbitrary and Gatys)")

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

    # upscale
    upscale_method: EnumProperty(name="Method", items=UPSCALE_METHODS, default="AUTO")
    upscale_scale: FloatProperty(name="Scale", min=1.0, max=8.0, default=4.0, description="How many times larger")
    upscale_tileable: BoolProperty(name="Tileable", default=False,
                                   description="The image is a tiling texture: keep it tiling")
    render_upscale: FloatProperty(name="Render Smaller, Upscale", min=1.0, max=8.0, default=1.0,
                                  description="Render at 1/S of the output resolution and upscale each frame to the "
                                              "full size (1 = off); the resolution setting stays as it is")
    render_upscale_method: EnumProperty(name="Upscale Method", items=UPSCALE_METHODS, default="AUTO")


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


def scene_layers(scene) -> list[dict]:
    """The scene's enabled style layers as plain dicts (target, style_path or style image name, method, strength)."""
    props = getattr(scene, "art_ai", None)
    out = []
    for la in getattr(props, "style_layers", ()):
        if not la.enabled:
            continue
        spec: dict = {"target": la.target(), "method": la.method.lower(), "strength": la.strength}
        if la.style_image is not None:
            spec["style_image"] = la.style_image.name
        elif la.style_path:
            spec["style"] = bpy.path.abspath(la.style_path)
        out.append(spec)
    return out


classes = (ArtAIStyleLayer, ArtAIKeyframe, ArtAISettings)
