"""Issue 29: an artist's first hour in the panels, step by step through the installed extension (real bpy)."""

import numpy as np
import pytest

from conftest import addon_module, skimage_rgb
from test_extension import new_image, pixels, rgba


def test_material_from_the_render_result(blender, demo_render):
    """Shader Editor > Art AI Material on "Render Result": a material whose albedo is the render, with its maps."""
    bpy = blender
    bridge = addon_module("art_ai_addon.blender.bridge")
    render = bridge.image_to_array(bpy.data.images["Render Result"], demo_render).copy()
    cube = next(o for o in demo_render.objects if o.type == "MESH" and o.name.startswith("Cube"))
    for o in demo_render.objects:
        o.select_set(o == cube)
    assert bpy.ops.art_ai.create_pbr_material(image="Render Result", name="FromRender") == {"FINISHED"}
    mat = bpy.data.materials["FromRender"]
    assert cube.active_material == mat
    images = {n.image.name: n.image for n in mat.node_tree.nodes if n.type == "TEX_IMAGE"}
    assert "Render Result" not in images  # the next render must not change the material
    albedo = images["FromRender.albedo"]
    assert albedo.colorspace_settings.name == "sRGB"
    assert np.abs(bridge.image_to_array(albedo)[:, :, :3] - render[:, :, :3]).max() <= 1 / 255 + 1e-6
    h, w = render.shape[:2]
    for key in ("normal", "roughness"):
        img = images[f"FromRender.{key}"]
        assert img.colorspace_settings.name == "Non-Color" and tuple(img.size) == (w, h)
    normal = pixels(images["FromRender.normal"])[:, :, :3] * 2 - 1
    assert np.allclose(np.linalg.norm(normal, axis=2), 1.0, atol=0.03)
    assert normal[:, :, :2].std() > 0.01  # relief from the render's content, not a flat map


def test_fast_style_without_a_model_says_which_model_and_where(blender):
    bpy = blender
    new_image(bpy, "fast_content", rgba(skimage_rgb("astronaut", 48)))
    new_image(bpy, "fast_style", rgba(skimage_rgb("coffee", 48)))
    with pytest.raises(RuntimeError) as err:
        bpy.ops.art_ai.stylize(image="fast_content", style="fast_style", method="FAST", model="")
    text = str(err.value)
    assert "Error" in text and "internal" not in text.lower() and "TypeError" not in text
    line = text.strip().splitlines()[-1]
    assert "model" in line and "Models" in line and "Train Style" in line
    assert "fast_content.stylized" not in bpy.data.images


def test_fast_style_without_a_model_api_and_cli(tmp_path):
    """The same one line from the API and the CLI (the method table's check, not the network's signature)."""
    import subprocess
    import sys

    import art_ai_addon as art

    img = skimage_rgb("astronaut", 32)
    with pytest.raises(art.InputError, match="model.*Train Style"):
        art.stylize(img, img, method="fast")
    import cv2

    cv2.imwrite(str(tmp_path / "c.png"), (img * 255).astype(np.uint8))
    p = subprocess.run([sys.executable, "-m", "art_ai_addon", "stylize", str(tmp_path / "c.png"), "--style",
                        str(tmp_path / "c.png"), "--method", "fast", "-o", str(tmp_path / "o.png")],
                       capture_output=True, text=True)
    assert p.returncode in (1, 2), p.stderr
    lines = p.stderr.strip().splitlines()
    assert "--model" in lines[-1] and "train-style" in lines[-1] and "Traceback" not in p.stderr
    assert not (tmp_path / "o.png").exists()


def test_detect_fills_the_panels_mask_then_inpaint_uses_it(blender):
    """Repair panel: Detect Damage, and the Mask field holds the new mask; Inpaint (as the panel calls it) uses it."""
    bpy = blender
    import cv2

    bridge = addon_module("art_ai_addon.blender.bridge")
    clean = skimage_rgb("camera", 96)
    broken = clean.copy()
    scratch = np.zeros((96, 96), np.uint8)
    cv2.line(scratch, (8, 15), (88, 75), 255, 2)
    broken[scratch > 0] = 1.0
    new_image(bpy, "panel_scan", rgba(broken))
    s = bpy.context.scene.art_ai
    s.damage_mask = None
    assert bpy.ops.art_ai.detect_damage(image="panel_scan", sensitivity=s.sensitivity) == {"FINISHED"}
    assert s.damage_mask is not None and s.damage_mask.name == "panel_scan.damage"
    # Inpaint as ARTAI_PT_repair fills it in: the mask is the panel's field
    assert bpy.ops.art_ai.inpaint(image="panel_scan", mask=s.damage_mask.name, method=s.inpaint_method,
                                  sensitivity=s.sensitivity) == {"FINISHED"}
    fixed = bridge.image_to_array(bpy.data.images["panel_scan.inpainted"])[:, :, :3]
    truth = scratch > 0
    assert np.abs(fixed[truth] - clean[truth]).mean() < 0.5 * np.abs(broken[truth] - clean[truth]).mean()
    found = bridge.image_to_array(s.damage_mask)[:, :, 0] > 0.5
    assert np.abs(fixed[~found] - broken[~found]).max() <= 1 / 255 + 1e-6  # only the detected pixels changed
    # detecting on another picture moves the field to that picture's mask
    new_image(bpy, "panel_scan2", rgba(broken[:, ::-1].copy()))
    assert bpy.ops.art_ai.detect_damage(image="panel_scan2") == {"FINISHED"}
    assert s.damage_mask.name == "panel_scan2.damage"


def test_make_seamless_on_a_texture_that_tiles_leaves_it(blender, capfd):
    """Texture panel > Make Seamless on a texture that already tiles: the copy is the texture, and the report says
    why; on a clean full-size gravel photo, Detect Damage marks (almost) nothing."""
    bpy = blender
    from clean_corpus import spectral_noise

    bridge = addon_module("art_ai_addon.blender.bridge")
    tex = spectral_noise(96, 2.0, 11, channels=3)
    new_image(bpy, "tiles", rgba(tex))
    source = bridge.image_to_array(bpy.data.images["tiles"]).copy()
    assert bpy.ops.art_ai.make_seamless(image="tiles") == {"FINISHED"}
    out = bridge.image_to_array(bpy.data.images["tiles.seamless"])
    assert np.abs(out - source).max() <= 1 / 255 + 1e-6
    assert "already tiles" in capfd.readouterr().out
    new_image(bpy, "clean_gravel", rgba(skimage_rgb("gravel", 512)))
    assert bpy.ops.art_ai.detect_damage(image="clean_gravel") == {"FINISHED"}
    assert (bridge.image_to_array(bpy.data.images["clean_gravel.damage"])[:, :, 0] > 0.5).mean() < 0.005
