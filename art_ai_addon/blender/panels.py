"""Panels: Image Editor sidebar ("Art AI" tab), Shader Editor sidebar, Render properties."""

from __future__ import annotations

import bpy

from . import jobs
from .props import engine_settings, task_problem


def _needs_line(layout, context, task: str, method: str | None = None) -> bool:
    """Show what a method lacks here, with how to get it; True when it can run (its button stays enabled)."""
    problem = task_problem(task, method, engine_settings(context))
    if problem:
        layout.label(text=problem, icon="ERROR")
    return not problem


def _draw_job(layout, context) -> bool:
    """Progress bar + cancel while a job runs; returns True when one is running."""
    settings = context.scene.art_ai
    if not settings.job_running or jobs.running_job(context.scene) is None:
        return False
    row = layout.row(align=True)
    row.progress(factor=settings.job_progress, type="BAR",
                 text=f"{settings.job_label}: {settings.job_message}")
    row.operator("art_ai.cancel_job", text="", icon="CANCEL")
    return True


def _editor_image(context):
    space = context.space_data
    return getattr(space, "image", None)


class _ImageEditorPanel:
    bl_space_type = "IMAGE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Art AI"


class ARTAI_PT_main(_ImageEditorPanel, bpy.types.Panel):  # type: ignore[misc]
    bl_label = "Art AI"

    def draw(self, context):
        layout = self.layout
        if not _draw_job(layout, context):
            image = _editor_image(context)
            layout.label(text=f"Image: {image.name}" if image else "Open an image or render (F12)",
                         icon="IMAGE_DATA")


class ARTAI_PT_stylize(_ImageEditorPanel, bpy.types.Panel):  # type: ignore[misc]
    bl_label = "Stylize"
    bl_parent_id = "ARTAI_PT_main"

    def draw(self, context):
        layout = self.layout
        s = context.scene.art_ai
        layout.use_property_split = True
        layout.template_ID(s, "style_image", open="image.open")
        if s.style_image is None:
            layout.prop(s, "style_path")
        layout.prop(s, "stylize_method")
        if s.stylize_method in {"FAST", "AUTO"}:
            layout.prop(s, "model")
        layout.prop(s, "strength")
        layout.prop(s, "preserve_color")
        layout.prop_search(s, "stylize_mask", bpy.data, "images", text="Mask")
        if s.stylize_method in {"GATYS", "AUTO"}:
            layout.prop(s, "steps")
        runs = _needs_line(layout, context, "stylize", s.stylize_method)
        image = _editor_image(context)
        col = layout.column()
        col.enabled = image is not None and not s.job_running and runs
        for preview in (True, False):
            op = col.operator("art_ai.stylize", text="Preview" if preview else "Stylize",
                              icon="HIDE_OFF" if preview else "BRUSH_DATA")
            op.image = image.name if image else ""
            op.style = s.style_image.name if s.style_image else ""
            op.style_path = s.style_path
            op.method = s.stylize_method
            op.strength = s.strength
            op.preserve_color = s.preserve_color
            op.mask = s.stylize_mask.name if s.stylize_mask else ""
            op.model = s.model
            op.steps = s.steps
            op.seed = s.seed
            op.preview = preview
        if s.stylize_method in {"FAST", "AUTO"}:
            op = col.operator("art_ai.train_style", icon="MOD_LINEART")
            op.image = image.name if image else ""
            op.style = s.style_image.name if s.style_image else ""
            op.style_path = s.style_path


class ARTAI_PT_texture(_ImageEditorPanel, bpy.types.Panel):  # type: ignore[misc]
    bl_label = "Texture"
    bl_parent_id = "ARTAI_PT_main"

    def draw(self, context):
        layout = self.layout
        s = context.scene.art_ai
        layout.use_property_split = True
        layout.prop(s, "texture_method")
        col = layout.column(align=True)
        col.prop(s, "texture_width")
        col.prop(s, "texture_height")
        layout.prop(s, "tileable")
        layout.prop(s, "seed")
        image = _editor_image(context)
        runs = _needs_line(layout, context, "synthesize_texture", s.texture_method)
        col = layout.column()
        col.enabled = image is not None and not s.job_running and runs
        op = col.operator("art_ai.generate_texture", icon="TEXTURE")
        op.image = image.name if image else ""
        op.width, op.height = s.texture_width, s.texture_height
        op.method, op.tileable, op.seed, op.steps = s.texture_method, s.tileable, s.seed, s.steps
        col = layout.column()
        col.enabled = image is not None and not s.job_running and _needs_line(layout, context, "make_seamless")
        col.operator("art_ai.make_seamless", icon="MOD_ARRAY").image = image.name if image else ""
        col.separator()
        col.prop(s, "normal_strength")
        col.prop(s, "use_displacement")
        op = col.operator("art_ai.create_pbr_material", icon="MATERIAL")
        op.image = image.name if image else ""
        op.normal_strength, op.displacement = s.normal_strength, s.use_displacement


class ARTAI_PT_repair(_ImageEditorPanel, bpy.types.Panel):  # type: ignore[misc]
    bl_label = "Repair"
    bl_parent_id = "ARTAI_PT_main"

    def draw(self, context):
        layout = self.layout
        s = context.scene.art_ai
        layout.use_property_split = True
        image = _editor_image(context)
        name = image.name if image else ""
        layout.prop_search(s, "reference", bpy.data, "images")
        layout.prop(s, "sensitivity")
        col = layout.column()
        col.enabled = image is not None and not s.job_running and _needs_line(layout, context, "detect_damage")
        op = col.operator("art_ai.detect_damage", icon="VIEWZOOM")
        op.image, op.sensitivity = name, s.sensitivity
        op.reference = s.reference.name if s.reference else ""
        layout.prop_search(s, "damage_mask", bpy.data, "images")
        if s.damage_mask is not None:
            layout.operator("art_ai.edit_mask", icon="BRUSH_DATA").mask = s.damage_mask.name
        layout.prop(s, "inpaint_method")
        runs = _needs_line(layout, context, "repair", s.inpaint_method)
        col = layout.column()
        col.enabled = image is not None and not s.job_running and runs
        op = col.operator("art_ai.inpaint", icon="BRUSHES_ALL")
        op.image, op.method, op.sensitivity, op.steps, op.seed = name, s.inpaint_method, s.sensitivity, s.steps, s.seed
        op.mask = s.damage_mask.name if s.damage_mask else ""
        op.reference = s.reference.name if s.reference else ""


class ARTAI_PT_upscale(_ImageEditorPanel, bpy.types.Panel):  # type: ignore[misc]
    bl_label = "Upscale"
    bl_parent_id = "ARTAI_PT_main"

    def draw(self, context):
        layout = self.layout
        s = context.scene.art_ai
        layout.use_property_split = True
        image = _editor_image(context)
        layout.prop(s, "upscale_method")
        layout.prop(s, "upscale_scale")
        layout.prop(s, "upscale_tileable")
        col = layout.column()
        col.enabled = image is not None and not s.job_running and _needs_line(layout, context, "upscale",
                                                                                s.upscale_method)
        op = col.operator("art_ai.upscale", icon="FULLSCREEN_ENTER")
        op.image, op.method, op.scale = image.name if image else "", s.upscale_method, s.upscale_scale
        op.tileable = s.upscale_tileable


class ARTAI_PT_shader(bpy.types.Panel):
    bl_label = "Art AI Material"
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Art AI"

    @classmethod
    def poll(cls, context):
        return getattr(context.space_data, "tree_type", "") == "ShaderNodeTree"

    def draw(self, context):
        layout = self.layout
        s = context.scene.art_ai
        _draw_job(layout, context)
        obj = getattr(context, "object", None)
        if obj is not None and obj.active_material is not None:
            row = layout.row(align=True)
            row.prop(s, "upscale_scale", text="")
            op = row.operator("art_ai.upscale_material", icon="FULLSCREEN_ENTER")
            op.material, op.scale, op.method = obj.active_material.name, s.upscale_scale, s.upscale_method
        node = getattr(context, "active_node", None)
        image = getattr(node, "image", None) if node is not None and node.type == "TEX_IMAGE" else None
        if image is None:
            layout.label(text="Select an Image Texture node", icon="INFO")
            return
        layout.label(text=image.name, icon="IMAGE_DATA")
        layout.prop(s, "normal_strength")
        layout.prop(s, "use_displacement")
        op = layout.operator("art_ai.create_pbr_material", icon="MATERIAL")
        op.image, op.normal_strength, op.displacement = image.name, s.normal_strength, s.use_displacement
        op = layout.operator("art_ai.make_seamless", icon="MOD_ARRAY")
        op.image = image.name


class ARTAI_UL_style_layers(bpy.types.UIList):
    """The style layers: target, method, strength."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        icons = {"OBJECT": "OBJECT_DATA", "COLLECTION": "OUTLINER_COLLECTION", "MATERIAL": "MATERIAL",
                 "REST": "WORLD"}
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.label(text=item.label(), icon=icons.get(item.target_kind, "DOT"))
        row.label(text=item.style_image.name if item.style_image else (item.style_path or "no style"))


class ARTAI_PT_render(bpy.types.Panel):
    bl_label = "Art AI Stylize"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"
    bl_options = {"DEFAULT_CLOSED"}

    def draw_header(self, context):
        self.layout.prop(context.scene.art_ai, "stylize_on_render", text="")

    def draw(self, context):
        layout = self.layout
        s = context.scene.art_ai
        layout.use_property_split = True
        layout.active = s.stylize_on_render
        layout.prop(s, "stylize_mode", expand=True)
        if s.stylize_mode == "KEYFRAMES":
            self._keyframes(layout, context, s)
            return
        layout.label(text="Style Layers (a style per object, collection, material)")
        row = layout.row()
        row.template_list("ARTAI_UL_style_layers", "", s, "style_layers", s, "style_layer_index", rows=3)
        col = row.column(align=True)
        col.operator("art_ai.style_layer_add", icon="ADD", text="")
        col.operator("art_ai.style_layer_remove", icon="REMOVE", text="")
        if s.style_layers and 0 <= s.style_layer_index < len(s.style_layers):
            la = s.style_layers[s.style_layer_index]
            box = layout.box()
            box.use_property_split = True
            box.prop(la, "target_kind")
            if la.target_kind != "REST":
                box.prop(la, {"OBJECT": "target_object", "COLLECTION": "target_collection",
                              "MATERIAL": "target_material"}[la.target_kind])
            box.template_ID(la, "style_image", open="image.open")
            if la.style_image is None:
                box.prop(la, "style_path")
            box.prop(la, "method")
            box.prop(la, "strength")
        layout.label(text="Without layers: one style for everything" if not s.style_layers else
                     "Untargeted pixels stay as rendered (add Everything Else to style them)")
        if not s.style_layers:
            layout.template_ID(s, "style_image", open="image.open")
            if s.style_image is None:
                layout.prop(s, "style_path")
            layout.prop(s, "stylize_method")
            layout.prop(s, "strength")
            layout.prop(s, "preserve_color")
        layout.prop(s, "keep_edges")
        layout.prop(s, "depth_scale")
        layout.prop(s, "temporal")
        layout.label(text="Saves <frame>_stylized beside each written frame", icon="INFO")
        op = layout.operator("art_ai.stylize", text="Stylize Render Result", icon="RENDER_RESULT")
        op.image = "Render Result"
        op.use_layers = True
        op.style = s.style_image.name if s.style_image else ""
        op.style_path, op.method, op.strength, op.preserve_color = (s.style_path, s.stylize_method, s.strength,
                                                                     s.preserve_color)

    @staticmethod
    def _keyframes(layout, context, s):
        layout.label(text="Paint over rendered frames; every frame carries the paint")
        row = layout.row()
        row.template_list("ARTAI_UL_keyframes", "", s, "keyframes", s, "keyframe_index", rows=3)
        col = row.column(align=True)
        col.operator("art_ai.keyframe_paint", icon="BRUSH_DATA", text="")
        col.operator("art_ai.keyframe_remove", icon="REMOVE", text="")
        if s.keyframes and 0 <= s.keyframe_index < len(s.keyframes):
            k = s.keyframes[s.keyframe_index]
            box = layout.box()
            box.prop(k, "frame")
            box.template_ID(k, "image", open="image.open")
            if k.image is None:
                box.prop(k, "path")
        layout.operator("art_ai.keyframe_paint", text="Paint This Frame", icon="BRUSH_DATA")
        layout.prop(s, "keyframes_dir")
        layout.operator("art_ai.propagate", text="Propagate", icon="RENDER_ANIMATION")


class ARTAI_PT_render_upscale(bpy.types.Panel):
    """Render Smaller, Upscale: render at 1/S of the output size, each frame upscaled to the full size."""

    bl_label = "Art AI Render Smaller, Upscale"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        s = context.scene.art_ai
        layout.use_property_split = True
        layout.prop(s, "render_upscale")
        layout.prop(s, "render_upscale_method")
        if s.render_upscale > 1:
            r = context.scene.render
            w, h = r.resolution_x * r.resolution_percentage // 100, r.resolution_y * r.resolution_percentage // 100
            layout.label(text=f"Renders {round(w / s.render_upscale)}x{round(h / s.render_upscale)}, "
                              f"writes {w}x{h}", icon="INFO")
            _needs_line(layout, context, "upscale", s.render_upscale_method)


class ARTAI_UL_keyframes(bpy.types.UIList):
    """The painted keyframes: frame and painted picture."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        row = layout.row(align=True)
        row.label(text=f"Frame {item.frame}", icon="KEYFRAME")
        row.label(text=item.image.name if item.image else (item.path or "not painted yet"))


classes = (ARTAI_PT_main, ARTAI_PT_stylize, ARTAI_PT_texture, ARTAI_PT_repair, ARTAI_PT_upscale, ARTAI_PT_shader,
           ARTAI_UL_style_layers, ARTAI_UL_keyframes, ARTAI_PT_render, ARTAI_PT_render_upscale)
