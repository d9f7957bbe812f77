"""The extension in the real bpy: built with Blender's tool, installed from its zip, enabled, operators run on a
Cycles render and on byte and float images; disable leaves nothing behind."""

import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import ADDON, ROOT, addon_module, blender_ext_tool, skimage_rgb

OPERATORS = ["stylize", "generate_texture", "make_seamless", "create_pbr_material", "detect_damage", "inpaint",
             "cancel_job"]


def srgb_to_linear(x):
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x):
    x = np.clip(x, 0, None)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def pixels(img):
    buf = np.empty(img.size[0] * img.size[1] * img.channels, np.float32)
    img.pixels.foreach_get(buf)
    return buf.reshape(img.size[1], img.size[0], img.channels)


def new_image(bpy, name, top_down, float_buffer=False, data=False):
    """An image whose Blender buffer holds `top_down` (engine orientation), written with plain numpy."""
    h, w, _ = top_down.shape
    img = bpy.data.images.new(name, w, h, alpha=True, float_buffer=float_buffer, is_data=data)
    img.pixels.foreach_set(np.ascontiguousarray(top_down[::-1]).ravel())
    return img


def rgba(rgb, alpha=1.0):
    a = np.broadcast_to(np.float32(alpha), rgb.shape[:2]) if np.isscalar(alpha) else alpha
    return np.dstack([rgb, a]).astype(np.float32)


def test_manifest_validates_and_zip_excludes_dev_files(extension_zip):
    p = subprocess.run([sys.executable, str(blender_ext_tool()), "validate", str(ROOT)], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "art_ai_addon/blender/bridge.py" in names and "art_ai_addon/cli.py" in names
    for prefix in ("tests/", "bench/", "docs/", ".ci/", ".venv", "scripts/"):
        assert not any(n.startswith(prefix) for n in names), prefix
    assert not any("__pycache__" in n for n in names)


def test_everything_is_registered(blender):
    bpy = blender
    for op in OPERATORS:
        assert hasattr(bpy.types, f"ART_AI_OT_{op}"), op
        assert getattr(bpy.ops.art_ai, op).idname() == f"ART_AI_OT_{op}"
    for pt in ("ARTAI_PT_main", "ARTAI_PT_stylize", "ARTAI_PT_texture", "ARTAI_PT_repair", "ARTAI_PT_shader",
               "ARTAI_PT_render"):
        assert hasattr(bpy.types, pt), pt
    assert hasattr(bpy.context.scene, "art_ai")
    prefs = bpy.context.preferences.addons[ADDON].preferences
    for key in ("device", "models_dir", "memory_budget_mb", "threads"):
        assert hasattr(prefs, key)
    assert addon_module("art_ai_addon.blender")._cli_handle is not None
    assert addon_module("art_ai_addon.blender")._cli(["--help"]) == 0


def test_stylize_render_result_with_cycles(blender, demo_render):
    bpy = blender
    bridge = addon_module("art_ai_addon.blender.bridge")
    render = bridge.image_to_array(bpy.data.images["Render Result"], demo_render).copy()
    assert render.shape == (96, 96, 4)
    assert render[:, :, :3].std() > 0.05  # a real picture, not an empty buffer
    new_image(bpy, "style", rgba(skimage_rgb("coffee", 64)))
    assert bpy.ops.art_ai.stylize(image="Render Result", style="style", method="COLOR") == {"FINISHED"}
    out = bpy.data.images["Render Result.stylized"]
    assert tuple(out.size) == (96, 96)
    res = bridge.image_to_array(out)
    style_mean = skimage_rgb("coffee", 64).mean(axis=(0, 1))
    assert np.abs(res[:, :, :3].mean(axis=(0, 1)) - style_mean).sum() < \
        np.abs(render[:, :, :3].mean(axis=(0, 1)) - style_mean).sum()
    again = bridge.image_to_array(bpy.data.images["Render Result"], demo_render)
    assert np.array_equal(again, render)  # the render is untouched


def test_render_result_reads_as_the_artist_sees_it(blender, demo_render):
    bpy = blender
    bridge = addon_module("art_ai_addon.blender.bridge")
    demo_render.view_settings.view_transform = "Standard"
    plain = bridge.image_to_array(bpy.data.images["Render Result"], demo_render)
    demo_render.view_settings.view_transform = "AgX"
    agx = bridge.image_to_array(bpy.data.images["Render Result"], demo_render)
    assert np.abs(plain - agx).mean() > 0.01  # the view transform is applied
    assert demo_render.render.image_settings.file_format == "PNG"  # the user's output settings are restored


def test_byte_image_alpha_orientation_and_source_untouched(blender):
    bpy = blender
    rgb = skimage_rgb("chelsea", 64)
    rgb[:4] = (1.0, 0.0, 0.0)  # top rows red in engine orientation
    alpha = np.tile(np.linspace(0.2, 1.0, 64, dtype=np.float32), (64, 1))
    src = new_image(bpy, "cat", rgba(rgb, alpha))
    bridge = addon_module("art_ai_addon.blender.bridge")
    arr = bridge.image_to_array(src)
    assert np.allclose(arr[0, 0, :3], (1, 0, 0), atol=1 / 255)  # row 0 is the top
    before = pixels(src).copy()
    new_image(bpy, "sty", rgba(skimage_rgb("coffee", 48)))
    assert bpy.ops.art_ai.stylize(image="cat", style="sty", method="COLOR") == {"FINISHED"}
    out = bpy.data.images["cat.stylized"]
    assert not out.is_float and tuple(out.size) == (64, 64)
    assert np.abs(pixels(out)[:, :, 3] - before[:, :, 3]).max() <= 1 / 255  # alpha passes through
    assert np.array_equal(pixels(src), before)  # source untouched
    # strength 0 gives the source back, to 1/255
    assert bpy.ops.art_ai.stylize(image="cat", style="sty", method="COLOR", strength=0.0, output="same") == {
        "FINISHED"}
    assert np.abs(pixels(bpy.data.images["same"]) - before).max() <= 1 / 255 + 1e-6


def test_float_linear_image_round_trip_and_result(blender):
    bpy = blender
    bridge = addon_module("art_ai_addon.blender.bridge")
    rng = np.random.default_rng(0)
    lin = srgb_to_linear(skimage_rgb("astronaut", 64)) * rng.uniform(0.5, 1.0, (64, 64, 1))
    src = new_image(bpy, "lin", rgba(lin.astype(np.float32)), float_buffer=True)
    back = bridge.array_to_image(bridge.image_to_array(src), "lin.back", float_buffer=True, source=src)
    err = np.abs(linear_to_srgb(pixels(back)[:, :, :3]) - linear_to_srgb(pixels(src)[:, :, :3])).max()
    assert err <= 1 / 255, err
    new_image(bpy, "sty2", rgba(skimage_rgb("coffee", 48)))
    before = pixels(src).copy()
    assert bpy.ops.art_ai.stylize(image="lin", style="sty2", method="COLOR") == {"FINISHED"}
    out = bpy.data.images["lin.stylized"]
    assert out.is_float
    assert np.array_equal(pixels(src), before)


def test_mask_and_rerun_updates_own_result_only(blender):
    bpy = blender
    new_image(bpy, "m_src", rgba(skimage_rgb("astronaut", 64)))
    new_image(bpy, "m_sty", rgba(skimage_rgb("coffee", 48)))
    m = np.zeros((64, 64, 3), np.float32)
    m[:, 32:] = 1.0
    new_image(bpy, "m_mask", rgba(m), data=True)
    assert bpy.ops.art_ai.stylize(image="m_src", style="m_sty", mask="m_mask", method="COLOR") == {"FINISHED"}
    out, src = pixels(bpy.data.images["m_src.stylized"]), pixels(bpy.data.images["m_src"])
    assert np.abs(out[:, :32] - src[:, :32]).max() <= 1 / 255 + 1e-6
    assert np.abs(out[:, 32:] - src[:, 32:]).mean() > 0.02
    n = len(bpy.data.images)
    assert bpy.ops.art_ai.stylize(image="m_src", style="m_sty", method="COLOR") == {"FINISHED"}
    assert len(bpy.data.images) == n  # a re-run updates its own earlier result
    new_image(bpy, "taken", rgba(np.zeros((8, 8, 3), np.float32)))
    assert bpy.ops.art_ai.stylize(image="m_src", style="m_sty", method="COLOR", output="taken") == {"FINISHED"}
    assert tuple(bpy.data.images["taken"].size) == (8, 8)  # someone else's image is never overwritten


def test_errors_are_reports_not_tracebacks(blender):
    bpy = blender
    new_image(bpy, "e_src", rgba(skimage_rgb("astronaut", 32)))
    n = len(bpy.data.images)
    with pytest.raises(RuntimeError, match="style"):
        bpy.ops.art_ai.stylize(image="e_src", method="COLOR")
    with pytest.raises(RuntimeError, match="no image called"):
        bpy.ops.art_ai.stylize(image="nope", style="e_src", method="COLOR")
    with pytest.raises(RuntimeError, match="source image"):
        bpy.ops.art_ai.stylize(image="e_src", style="e_src", method="COLOR", output="e_src")
    with pytest.raises(RuntimeError, match="mask"):
        new_image(bpy, "e_small", rgba(np.ones((8, 8, 3), np.float32)))
        bpy.ops.art_ai.stylize(image="e_src", style="e_src", mask="e_small", method="COLOR")
    assert len(bpy.data.images) == n + 1  # only the small mask we made; no half-made result


def test_one_job_per_scene(blender):
    bpy = blender
    jobs = addon_module("art_ai_addon.blender.jobs")
    new_image(bpy, "j_src", rgba(skimage_rgb("astronaut", 32)))
    blocker = jobs.Job("Other job", lambda progress, cancel: cancel.wait(10))
    jobs._jobs[bpy.context.scene.name] = blocker
    blocker.start()
    try:
        with pytest.raises(RuntimeError, match="already running 'Other job'"):
            bpy.ops.art_ai.stylize(image="j_src", style="j_src", method="COLOR")
        assert bpy.ops.art_ai.cancel_job() == {"FINISHED"}
        assert blocker.done.wait(5) and blocker.cancel.is_set()
    finally:
        jobs._jobs.clear()


def test_job_thread_reports_progress_and_cancels(blender):
    import threading

    jobs = addon_module("art_ai_addon.blender.jobs")
    errors = addon_module("art_ai_addon.errors")
    core = addon_module("art_ai_addon.core")
    started = threading.Event()

    def work(progress, cancel):
        rep = core.reporter(progress, cancel)
        for i in range(1000):
            rep(i / 1000, "step")
            started.set()
            cancel.wait(0.01)
        return "finished"

    job = jobs.Job("t", work)
    job.start()
    assert started.wait(5)
    job.cancel.set()
    assert job.done.wait(5)
    assert isinstance(job.error, errors.Cancelled) and job.result is None
    assert not job.updates.empty()


def test_results_survive_save_and_reload(blender, tmp_path):
    bpy = blender
    new_image(bpy, "s_src", rgba(skimage_rgb("astronaut", 32)))
    assert bpy.ops.art_ai.stylize(image="s_src", style="s_src", method="COLOR", strength=0.5) == {"FINISHED"}
    expected = pixels(bpy.data.images["s_src.stylized"]).copy()
    path = tmp_path / "saved.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    img = bpy.data.images["s_src.stylized"]
    assert img.packed_file is not None
    assert np.abs(pixels(img) - expected).max() <= 1 / 255 + 1e-6


def test_disable_leaves_nothing_and_enable_again(blender):
    bpy = blender
    pkg = addon_module("art_ai_addon.blender")
    bpy.ops.preferences.addon_disable(module=ADDON)
    try:
        leftovers = [n for n in dir(bpy.types) if n.startswith(("ARTAI_", "ART_AI_"))]
        assert leftovers == []
        assert not hasattr(bpy.types.Scene, "art_ai")
        assert pkg._cli_handle is None
        for handlers in (bpy.app.handlers.save_pre, bpy.app.handlers.render_write, bpy.app.handlers.render_post):
            assert not any("art_ai" in getattr(h, "__module__", "") for h in handlers)
    finally:
        bpy.ops.preferences.addon_enable(module=ADDON)
    assert hasattr(bpy.types, "ART_AI_OT_stylize") and hasattr(bpy.types.Scene, "art_ai")
    bpy.ops.preferences.addon_disable(module=ADDON)
    bpy.ops.preferences.addon_enable(module=ADDON)
    assert hasattr(bpy.types, "ARTAI_PT_main")


@pytest.mark.parametrize("ext, bits", [(".png", 8), (".png", 16), (".exr", None), (".jpg", 8)])
def test_file_and_packed_images_read_like_opencv(blender, tmp_path, ext, bits):
    """Images Blender loads from disk (byte, 16-bit float, EXR linear, packed) read as OpenCV reads the file."""
    import art_ai_addon as art

    bpy = blender
    bridge = addon_module("art_ai_addon.blender.bridge")
    rgb = skimage_rgb("chelsea", 48)
    img = rgb if ext == ".jpg" else rgba(rgb, np.full((48, 48), 1.0, np.float32))
    path = art.write_image(tmp_path / f"f{ext}", img, bits=bits)
    expected = art.read_image(path)
    loaded = bpy.data.images.load(str(path))
    got = bridge.image_to_array(loaded)
    assert got.shape[:2] == expected.shape[:2]
    assert np.abs(got[:, :, :3] - expected[:, :, :3]).max() <= 1.5 / 255
    loaded.pack()
    packed = bridge.image_to_array(loaded)
    assert np.abs(packed[:, :, :3] - expected[:, :, :3]).max() <= 1.5 / 255
    bpy.data.images.remove(loaded)


def test_large_frame_colour_conversion_matches_the_formula(blender, monkeypatch):
    """Frames convert colour in cache-sized row blocks, over threads, with tables indexed by the float's bits: they
    must match the exact formulas to 1/255, NaN, inf, negative and alpha-0 pixels included, threaded or not."""
    bpy = blender
    bridge = addon_module("art_ai_addon.blender.bridge")
    rng = np.random.default_rng(5)
    h, w = 300, 257
    lin = rng.random((h * w, 4), dtype=np.float32) * 1.5
    lin[:, 3] = np.minimum(lin[:, 3], 1.0)
    lin[::7, 3] = 1.0
    lin[:, :3] *= lin[:, 3:]
    lin[::31, 1], lin[::37, 0], lin[::41, 2], lin[::43, 3] = np.nan, -0.25, np.inf, 0.0
    img = bpy.data.images.new("big_float", w, h, alpha=True, float_buffer=True)
    img.pixels.foreach_set(lin.ravel())
    src = np.nan_to_num(lin.reshape(h, w, 4)[::-1].astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    alpha = np.clip(src[:, :, 3:], 0.0, 1.0)
    straight = np.where(alpha > 1e-6, src[:, :, :3] / np.maximum(alpha, 1e-6), 0.0)
    expected = np.concatenate([linear_to_srgb(np.clip(straight, 0.0, 1.0)), alpha], axis=2)
    for threshold in (1 << 40, 0):  # one thread, then every frame on the thread pool
        monkeypatch.setattr(bridge, "_MIN_THREADED", threshold)
        got = np.array(bridge.image_to_array(img))
        assert np.isfinite(got).all() and np.abs(got - expected).max() <= 1 / 255
        back = pixels(bridge.array_to_image(got, f"big_back_{threshold}", float_buffer=True))[::-1]
        a = back[:, :, 3:]
        assert np.abs(a - got[:, :, 3:]).max() == 0.0  # alpha passes through
        seen = linear_to_srgb(np.where(a > 1e-6, back[:, :, :3] / np.maximum(a, 1e-6), 0.0))
        assert np.abs(np.where(a > 1e-6, seen - got[:, :, :3], 0.0)).max() <= 1 / 255
