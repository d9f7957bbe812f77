"""The operators, one a file (Node Wrangler's layout); each reads its inputs from bpy, hands plain values to the
job runner (this process or the engine worker) and writes the result into a new image or material."""

from __future__ import annotations

from .stylize import ARTAI_OT_stylize
from .train_style import ARTAI_OT_train_style
from .generate_texture import ARTAI_OT_generate_texture
from .make_seamless import ARTAI_OT_make_seamless
from .create_pbr_material import ARTAI_OT_create_pbr_material
from .detect_damage import ARTAI_OT_detect_damage
from .inpaint import ARTAI_OT_inpaint
from .edit_mask import ARTAI_OT_edit_mask
from .style_layer_add import ARTAI_OT_style_layer_add
from .style_layer_remove import ARTAI_OT_style_layer_remove
from .keyframe_paint import ARTAI_OT_keyframe_paint
from .keyframe_remove import ARTAI_OT_keyframe_remove
from .propagate import ARTAI_OT_propagate
from .upscale import ARTAI_OT_upscale
from .upscale_material import ARTAI_OT_upscale_material

classes = (ARTAI_OT_stylize, ARTAI_OT_train_style, ARTAI_OT_generate_texture, ARTAI_OT_make_seamless,
           ARTAI_OT_create_pbr_material, ARTAI_OT_detect_damage, ARTAI_OT_inpaint, ARTAI_OT_edit_mask,
           ARTAI_OT_style_layer_add, ARTAI_OT_style_layer_remove, ARTAI_OT_keyframe_paint, ARTAI_OT_keyframe_remove,
           ARTAI_OT_propagate, ARTAI_OT_upscale, ARTAI_OT_upscale_material)
