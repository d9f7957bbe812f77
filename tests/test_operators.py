"""The texture and repair operators in the real bpy, through the installed extension."""

import numpy as np
import pytest

from conftest import addon_module, skimage_rgb
from test_extension import new_image, pixels, rgba


def seam_jump(img):
    """Wrap-around jump across the right/left and bottom/top edges relative to ordinary neighbour steps."""
    g = img[:, :, :3].mean(axis=2)
    inner = np.abs(np.diff(g, axis=1)).mean() + np.abs(np.diff(g, axis=0)).mean()
    wrap = np.abs(g[:, 0] - g[:, -1]).mean() + np.abs(g[0, :] - g[-1, :]).mean()
    return wrap / inner


def test_generate_texture_and_make_seamless(blender):
    bpy = blender
    bridge = addon_module("art_ai_addon.blender.bridge")
    ramp = np.linspace(0.55, 1.0, 64, dtype=np.float32)
    lit = skimage_rgb("gravel", 64) * ramp[None, :, None] * ramp[:, None, None]  # uneven light, like a photo
    new_image(bpy, "gravel", rgba(lit))
    assert bpy.ops.art_ai.generate_texture(image="gravel", width=96, height=80, method="PATCH", seed=2) == {
        "FINISHED"}
    tex = bpy.data.images["gravel.texture"]
    assert tuple(tex.size) == (96, 80)
    arr = bridge.image_to_array(tex)
    assert seam_jump(arr) < 1.5
    assert seam_jump(lit) > 1.5  # the exemplar itself does not wrap
    assert bpy.ops.art_ai.make_seamless(image="gravel") == {"FINISHED"}
    seamless = bridge.image_to_array(bpy.data.images["gravel.seamless"])
    assert seamless.shape[:2] == (64, 64) and seam_jump(seamless) < 1.5


def test_create_pbr_material_on_selected_object(blender):
    bpy = blender
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.object
    cube.select_set(True)
    new_image(bpy, "brick", rgba(skimage_rgb("brick", 64)))
    assert bpy.ops.art_ai.create_pbr_material(image="brick", name="Bricks", normal_strength=2.0) == {"FINISHED"}
    mat = bpy.data.materials["Bricks"]
    assert cube.active_material == mat
    nodes = mat.node_tree.nodes
    tex_nodes = [n for n in nodes if n.type == "TEX_IMAGE"]
    spaces = {n.image.name: n.image.colorspace_settings.name for n in tex_nodes}
    assert spaces["brick"] == "sRGB"
    for key in ("normal", "roughness"):
        assert spaces[f"Bricks.{key}"] == "Non-Color"
    assert any(n.type == "NORMAL_MAP" for n in nodes)
    normal = pixels(bpy.data.images["Bricks.normal"])[:, :, :3] * 2 - 1
    assert np.allclose(np.linalg.norm(normal, axis=2), 1.0, atol=0.03)


def test_detect_and_inpaint_operators(blender):
    bpy = blender
    import cv2

    bridge = addon_module("art_ai_addon.blender.bridge")
    clean = skimage_rgb("camera", 96)
    broken = clean.copy()
    mask = np.zeros((96, 96), np.uint8)
    cv2.line(mask, (5, 20), (90, 70), 255, 2)
    cv2.line(mask, (10, 80), (80, 10), 255, 2)
    broken[mask > 0] = 1.0
    new_image(bpy, "scan", rgba(broken))
    assert bpy.ops.art_ai.detect_damage(image="scan", sensitivity=0.6) == {"FINISHED"}
    found = bpy.data.images["scan.damage"]
    assert found.colorspace_settings.name == "Non-Color"
    m = bridge.image_to_array(found)[:, :, 0] > 0.5
    truth = mask > 0
    assert (m & truth).sum() / truth.sum() > 0.5  # recall
    near = cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0  # the mask may cover a scratch's soft edges
    assert (m & near).sum() / max(m.sum(), 1) > 0.8  # precision
    new_image(bpy, "scan.mask", rgba(np.dstack([mask / 255.0] * 3).astype(np.float32)), data=True)
    assert bpy.ops.art_ai.inpaint(image="scan", mask="scan.mask", method="TELEA") == {"FINISHED"}
    fixed = bridge.image_to_array(bpy.data.images["scan.inpainted"])[:, :, :3]
    assert np.abs(fixed[~truth] - broken[~truth]).max() <= 1 / 255 + 1e-6
    err_before = np.abs(broken[truth] - clean[truth]).mean()
    assert np.abs(fixed[truth] - clean[truth]).mean() < 0.5 * err_before
    # empty mask name: detect first, then fill
    assert bpy.ops.art_ai.inpaint(image="scan", output="scan.auto") == {"FINISHED"}
    auto = bridge.image_to_array(bpy.data.images["scan.auto"])[:, :, :3]
    assert np.abs(auto[truth] - clean[truth]).mean() < err_before
    new_image(bpy, "small.mask", rgba(np.ones((10, 12, 3), np.float32)), data=True)
    with pytest.raises(RuntimeError, match="12x10"):
        bpy.ops.art_ai.inpaint(image="scan", mask="small.mask")


def test_inpaint_render_result(blender, demo_render):
    bpy = blender
    bridge = addon_module("art_ai_addon.blender.bridge")
    render = bridge.image_to_array(bpy.data.images["Render Result"], demo_render)
    mask = np.zeros(render.shape[:2] + (3,), np.float32)
    mask[40:46, 10:80] = 1.0
    new_image(bpy, "rr.mask", rgba(mask), data=True)
    assert bpy.ops.art_ai.inpaint(image="Render Result", mask="rr.mask", method="PATCH") == {"FINISHED"}
    out = bridge.image_to_array(bpy.data.images["Render Result.inpainted"])
    keep = mask[:, :, 0] == 0
    assert np.abs(out[keep] - render[keep]).max() <= 1 / 255 + 1e-6


def test_train_style_then_stylize_fast_with_it(blender):
    bpy = blender
    new_image(bpy, "train_content", rgba(skimage_rgb("astronaut", 64)))
    new_image(bpy, "train_style", rgba(skimage_rgb("coffee", 64)))
    assert bpy.ops.art_ai.train_style(image="train_content", style="train_style", name="coffee_test",
                                      steps=2) == {"FINISHED"}
    prefs = addon_module("art_ai_addon.blender.props").engine_settings()
    from pathlib import Path

    assert (Path(prefs["models_dir"]) / "coffee_test.pth").is_file()
    assert bpy.ops.art_ai.stylize(image="train_content", style="train_style", method="FAST",
                                  model="coffee_test") == {"FINISHED"}
    out = pixels(bpy.data.images["train_content.stylized"])
    assert out.shape == (64, 64, 4) and np.isfinite(out).all()


def test_generate_texture_gan_trains_once_then_auto_reuses_it(blender):
    """The GAN path through the operator: trains, stores the generator, and Auto then uses the stored one."""
    bpy = blender
    from pathlib import Path

    bridge = addon_module("art_ai_addon.blender.bridge")
    models = Path(addon_module("art_ai_addon.blender.props").engine_settings()["models_dir"])
    new_image(bpy, "gan_ex", rgba(skimage_rgb("gravel", 48)))
    before = set(models.glob("texture_gan_*"))
    assert bpy.ops.art_ai.generate_texture(image="gan_ex", width=64, height=48, method="GAN", steps=40, seed=3,
                                           output="gan_ex.gan") == {"FINISHED"}
    stored = set(models.glob("texture_gan_*.pth")) - before
    assert len(stored) == 1
    stamp = next(iter(stored)).stat().st_mtime_ns
    gan = bridge.image_to_array(bpy.data.images["gan_ex.gan"])
    assert gan.shape[:2] == (48, 64) and seam_jump(gan) < 1.5
    assert bpy.ops.art_ai.generate_texture(image="gan_ex", width=64, height=48, method="AUTO", seed=3,
                                           output="gan_ex.auto") == {"FINISHED"}
    auto = bridge.image_to_array(bpy.data.images["gan_ex.auto"])
    assert next(iter(stored)).stat().st_mtime_ns == stamp  # not retrained
    assert np.abs(auto - gan).max() <= 1 / 255 + 1e-6  # the stored generator, same seed: the same texture
    patch = bpy.ops.art_ai.generate_texture(image="gan_ex", width=64, height=48, method="PATCH", seed=3,
                                            output="gan_ex.patch")
    assert patch == {"FINISHED"}
    assert np.abs(bridge.image_to_array(bpy.data.images["gan_ex.patch"]) - gan).mean() > 0.02
