"""Operators: each reads its inputs from bpy, hands arrays to the engine (off the main thread in the UI),
and writes the result into a new image / material on the main thread."""

from __future__ import annotations

import os

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..cli import StderrProgress
from ..core import set_threads
from ..errors import ArtAIError, InputError, NotAvailableError
from . import bridge
from .jobs import JobOperator
from .props import INPAINT_METHODS, STYLIZE_METHODS, TEXTURE_METHODS, engine_settings


def source_image(context, name: str, what: str = "image"):
    """The named image; with no name, the one shown in the Image Editor the operator runs from."""
    if not name:
        space = getattr(context, "space_data", None)
        image = getattr(space, "image", None) if space is not None and space.type == "IMAGE_EDITOR" else None
        if image is not None:
            return image
    return bridge.find_image(name, what)


def load_file_array(path: str, what: str) -> np.ndarray:
    """Read an image file through Blender itself (works without OpenCV), then drop the datablock."""
    full = bpy.path.abspath(path)
    if not os.path.isfile(full):
        raise InputError(f"{what}: {full} does not exist")
    try:
        img = bpy.data.images.load(full, check_existing=False)
    except RuntimeError as exc:
        raise InputError(f"{what}: cannot read {full}: not an image Blender can open") from exc
    try:
        return bridge.image_to_array(img).copy()
    finally:
        bpy.data.images.remove(img)


def downscale(arr: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter downscale by an integer factor (for previews), no OpenCV needed."""
    h, w = (arr.shape[0] // factor) * factor, (arr.shape[1] // factor) * factor
    if h == 0 or w == 0:
        return arr
    a = np.asarray(arr[:h, :w], dtype=np.float32)
    return a.reshape(h // factor, factor, w // factor, factor, a.shape[2]).mean(axis=(1, 3))


class _ImageJob(JobOperator):
    """Shared bits: the source image, the engine settings, and where the result goes."""

    def _begin(self, context, what="image"):
        self._src = source_image(context, self.image, what)  # type: ignore[attr-defined]
        self._src_name = self._src.name
        self._float = bool(self._src.is_float) and not bridge.is_render_result(self._src)
        self._settings = engine_settings(context)
        set_threads(self._settings["threads"])
        return bridge.image_to_array(self._src, context.scene)

    def _wrap(self, fn):
        """The engine call with a progress printer in background mode."""
        label = self.job_label

        def work(progress, cancel):
            if bpy.app.background:  # batch runs: the CLI's progress lines on stderr
                printer = StderrProgress(prefix=f"{label} ")

                def both(f, m=""):
                    printer(f, m)
                    progress(f, m)

                return fn(both, cancel)
            return fn(progress, cancel)

        return work

    def _output(self, context, arr, default_suffix, data=False):
        name = self.output or f"{self._src_name}.{default_suffix}"  # type: ignore[attr-defined]
        src = bpy.data.images.get(self._src_name)
        bridge.check_writable_name(name, src)
        img = bridge.array_to_image(arr, name, data=data, float_buffer=self._float and not data, source=src)
        bridge.show_in_editor(context, img)
        return img


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

    def prepare(self, context):
        content = self._begin(context)
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
        from ..stylize import stylize

        options = {"seed": self.seed, "models_dir": self._settings["models_dir"],
                   "memory_budget_mb": self._settings["memory_budget_mb"]}
        if self.steps:
            options["steps"] = self.steps
        if self.model:
            options["model"] = bpy.path.abspath(self.model) if os.sep in self.model else self.model
        self._info: dict = {}
        kwargs = dict(method=self.method.lower(), strength=self.strength, preserve_color=self.preserve_color,
                      mask=mask, device=self._settings["device"], info=self._info, **options)
        return self._wrap(lambda progress, cancel: stylize(content, style, progress=progress, cancel=cancel,
                                                           **kwargs))

    def finish(self, context, result):
        suffix = "preview" if self.preview else "stylized"
        img = self._output(context, result, suffix)
        note = self._info.get("note")
        used = self._info.get("method", self.method.lower())
        self.report({"INFO"}, f"Stylized with {used} into '{img.name}'" + (f"; {note}" if note else ""))


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
        from ..stylize import train_fast_style

        kwargs = dict(steps=self.steps, name=self.name or None, models_dir=self._settings["models_dir"],
                      device=self._settings["device"])
        return self._wrap(lambda progress, cancel: train_fast_style(style, contents, progress=progress,
                                                                    cancel=cancel, **kwargs))

    def finish(self, context, path):
        self.report({"INFO"}, f"Trained style model saved as {path}; use it with Method: Fast, Model: {path.stem}")


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
        from ..texture import synthesize_texture

        options = {"models_dir": self._settings["models_dir"], "device": self._settings["device"],
                   "memory_budget_mb": self._settings["memory_budget_mb"]}
        if self.steps:
            options["steps"] = self.steps
        self._info: dict = {}
        kwargs = dict(size=(self.height, self.width), method=self.method.lower(), tileable=self.tileable,
                      seed=self.seed, info=self._info, **options)  # plain values: the worker must not touch bpy
        return self._wrap(lambda progress, cancel: synthesize_texture(exemplar, progress=progress, cancel=cancel,
                                                                      **kwargs))

    def finish(self, context, result):
        img = self._output(context, result, "texture")
        note = self._info.get("note")
        used = self._info.get("method", self.method.lower())
        self.report({"INFO"}, f"Texture '{img.name}' ({img.size[0]}x{img.size[1]}, {used})"
                    + (f"; {note}" if note else ""))


class ARTAI_OT_make_seamless(_ImageJob, bpy.types.Operator):
    """Make an image tile without visible seams, keeping its size"""

    bl_idname = "art_ai.make_seamless"
    bl_label = "Make Seamless"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Make seamless"

    image: StringProperty(name="Image")
    output: StringProperty(name="Output", description="Result image name (default <image>.seamless)")

    def prepare(self, context):
        arr = self._begin(context)
        from ..texture import make_seamless

        return self._wrap(lambda progress, cancel: make_seamless(arr, progress=progress, cancel=cancel))

    def finish(self, context, result):
        img = self._output(context, result, "seamless")
        self.report({"INFO"}, f"Seamless image '{img.name}'")


class ARTAI_OT_create_pbr_material(_ImageJob, bpy.types.Operator):
    """Derive height, normal, roughness and AO maps and build a material on the selected objects"""

    bl_idname = "art_ai.create_pbr_material"
    bl_label = "Create PBR Material"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "PBR material"

    image: StringProperty(name="Albedo")
    name: StringProperty(name="Name", description="Material name (default <image>.material)")
    normal_strength: FloatProperty(name="Normal Strength", min=0.0, max=10.0, default=1.0)
    displacement: BoolProperty(name="Displacement", default=False, description="Wire the height map to "
                               "a Displacement node")
    assign: BoolProperty(name="Assign", default=True, description="Assign to the selected objects")

    def prepare(self, context):
        albedo = self._begin(context, "albedo")
        try:
            from . import materials  # noqa: F401
        except ImportError as exc:
            raise NotAvailableError("material building is not available yet in this version") from exc
        from ..texture import pbr_maps

        strength = self.normal_strength
        return self._wrap(lambda progress, cancel: pbr_maps(albedo, strength=strength, progress=progress,
                                                            cancel=cancel))

    def finish(self, context, maps):
        from . import materials

        src = bpy.data.images.get(self._src_name)
        if src is None:
            raise ArtAIError(f"albedo: the image {self._src_name!r} was removed while the maps were made")
        if bridge.is_render_result(src):
            src = self._output(context, bridge.image_to_array(src, context.scene), "albedo")
        base = self.name or f"{self._src_name}.material"
        images = {}
        for key, arr in maps.items():
            images[key] = bridge.array_to_image(arr, f"{base}.{key}", data=True, source=src)
        objects = [o for o in context.selected_objects if o.type == "MESH"] if self.assign else []
        mat = materials.build_pbr_material(base, src, images, normal_strength=self.normal_strength,
                                           displacement=self.displacement, objects=objects)
        self.report({"INFO"}, f"Material '{mat.name}' on {len(objects)} object(s)")


class ARTAI_OT_detect_damage(_ImageJob, bpy.types.Operator):
    """Find scratches, cracks, spots and holes; the mask can be corrected by painting"""

    bl_idname = "art_ai.detect_damage"
    bl_label = "Detect Damage"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Detect damage"

    image: StringProperty(name="Image")
    reference: StringProperty(name="Reference", description="Another version of the picture (optional)")
    sensitivity: FloatProperty(name="Sensitivity", min=0.0, max=1.0, default=0.5, subtype="FACTOR")
    output: StringProperty(name="Output", description="Mask image name (default <image>.damage)")

    def prepare(self, context):
        arr = self._begin(context)
        ref = None
        if self.reference:
            ref = bridge.image_to_array(bridge.find_image(self.reference, "reference"), context.scene)
        from ..repair import detect_damage

        sensitivity = self.sensitivity
        return self._wrap(lambda progress, cancel: detect_damage(arr, reference=ref, sensitivity=sensitivity,
                                                                 progress=progress, cancel=cancel))

    def finish(self, context, mask):
        img = self._output(context, mask, "damage", data=True)
        share = float((np.asarray(mask) > 0.5).mean()) * 100
        self.report({"INFO"}, f"Damage mask '{img.name}': {share:.1f}% of the pixels")


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
        from ..repair import detect_damage, inpaint

        options = {"seed": self.seed, "models_dir": self._settings["models_dir"], "device": self._settings["device"]}
        if self.steps:
            options["steps"] = self.steps
        method, sensitivity = self.method.lower(), self.sensitivity

        def work(progress, cancel):
            m = mask
            if m is None:
                m = detect_damage(arr, reference=ref, sensitivity=sensitivity, progress=progress, cancel=cancel)
            return inpaint(arr, m, method=method, progress=progress, cancel=cancel, **options)

        return self._wrap(work)

    def finish(self, context, result):
        img = self._output(context, result, "inpainted")
        self.report({"INFO"}, f"Inpainted into '{img.name}'")


class ARTAI_OT_edit_mask(bpy.types.Operator):
    """Show the damage mask in this Image Editor in paint mode, to correct it with a brush"""

    bl_idname = "art_ai.edit_mask"
    bl_label = "Paint Mask"
    bl_options = {"REGISTER"}

    mask: StringProperty(name="Mask")

    def execute(self, context):
        try:
            img = bridge.find_image(self.mask, "mask")
        except ArtAIError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        space = getattr(context, "space_data", None)
        if space is None or space.type != "IMAGE_EDITOR":
            self.report({"ERROR"}, "Run this from the Image Editor")
            return {"CANCELLED"}
        space.image = img
        space.ui_mode = "PAINT"
        return {"FINISHED"}


classes = (ARTAI_OT_stylize, ARTAI_OT_train_style, ARTAI_OT_generate_texture, ARTAI_OT_make_seamless,
           ARTAI_OT_create_pbr_material, ARTAI_OT_detect_damage, ARTAI_OT_inpaint, ARTAI_OT_edit_mask)
