"""Temporal coherence (flicker, occlusions, Blender's Vector pass) and the `render` command / render handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data as skd

from art_ai_addon.imageio import read_image, write_image
from art_ai_addon.stylize import stylize
from art_ai_addon.stylize.temporal import optical_flow, stylize_sequence, vector_pass_to_flow, warp

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
S = 96


def _img(arr, size):
    return cv2.resize(arr, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


BACKGROUND = _img(skd.coffee(), S)
STYLE = np.clip(_img(skd.astronaut(), 64)[:, :, [2, 0, 1]] * 0.8 + 0.1, 0, 1)


def _frames(n=8, speed=5):
    """A red square sliding over a still photograph."""
    out = []
    for t in range(n):
        f = BACKGROUND.copy()
        x = 10 + speed * t
        f[30:54, x:x + 24] = (0.9, 0.1, 0.1)
        out.append(f)
    return out


FRAMES = _frames()


def _still_mask(frames):
    still = np.ones(frames[0].shape[:2], bool)
    for f in frames:
        still &= np.abs(f - frames[0]).max(2) == 0
    return cv2.erode(still.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


def _flicker(outs, still):
    return float(np.mean([np.abs(outs[t] - outs[t - 1])[still].mean() for t in range(1, len(outs))]))


class NoisyStylize:
    """A stylization that lands somewhere a little different on every call, like an optimisation from noise."""

    def __init__(self):
        self.calls = 0

    def __call__(self, content, style, **kw):
        out = stylize(content, style, method="color", strength=kw.get("strength", 1.0))
        rng = np.random.default_rng(self.calls)
        self.calls += 1
        noise = cv2.GaussianBlur(rng.normal(0, 0.2, out.shape).astype(np.float32), (0, 0), 1.0)
        return np.clip(out + noise, 0, 1)


def test_flicker_halved_with_temporal():
    still = _still_mask(FRAMES)
    assert still.mean() > 0.5
    plain_engine, temporal_engine = NoisyStylize(), NoisyStylize()
    plain = [plain_engine(f, STYLE) for f in FRAMES]
    temporal, state = [], None
    for f in FRAMES:
        r, state = stylize_sequence(f, STYLE, state, method=temporal_engine)
        temporal.append(r)
    f0, f1 = _flicker(plain, still), _flicker(temporal, still)
    assert f0 > 0.02, "the per-frame stylization should flicker for this test to mean anything"
    assert f1 < 0.5 * f0, (f0, f1)
    # the real colour engine with a different seed per frame (as a farm might run it) flickers less as well
    plain2 = [stylize(f, STYLE, method="color", seed=t, iterations=2) for t, f in enumerate(FRAMES)]
    temporal2, state = [], None
    for t, f in enumerate(FRAMES):
        r, state = stylize_sequence(f, STYLE, state, method="color", seed=t, iterations=2)
        temporal2.append(r)
    g0, g1 = _flicker(plain2, still), _flicker(temporal2, still)
    assert g0 > 0.01 and g1 < 0.5 * g0, (g0, g1)
    # and the result is still stylized: close to the per-frame result, far from the content
    assert np.abs(temporal2[-1] - plain2[-1]).mean() < 0.5 * np.abs(FRAMES[-1] - plain2[-1]).mean()


def test_occlusions_leave_no_ghost_trail():
    # deterministic, so this is the ideal per-frame result
    truth = [stylize(f, STYLE, method="color", iterations=8) for f in FRAMES]
    errors = {}
    for occlusion in (True, False):
        state, errs = None, []
        for t, f in enumerate(FRAMES):
            r, state = stylize_sequence(f, STYLE, state, method="color", occlusion=occlusion, iterations=8)
            if t:
                uncovered = (np.abs(FRAMES[t - 1] - BACKGROUND).max(2) > 0) & (np.abs(f - BACKGROUND).max(2) == 0)
                errs.append(np.abs(r - truth[t])[uncovered].mean())
        errors[occlusion] = max(errs)
    assert errors[True] < 0.02, errors
    # without the occlusion check the square's colours are dragged over the uncovered background
    assert errors[False] > 5 * errors[True] + 0.05, errors


def test_optical_flow_and_warp_convention():
    patch = _img(skd.astronaut()[100:300, 150:350], 32)
    a, b = BACKGROUND.copy(), BACKGROUND.copy()
    a[30:62, 20:52] = patch
    b[33:65, 25:57] = patch  # moved 5 px right, 3 px down
    flow = optical_flow(b, a)  # b(x) ~ a(x + flow)
    inner = (slice(38, 60), slice(30, 52))
    assert abs(np.median(flow[inner][..., 0]) + 5) < 0.75 and abs(np.median(flow[inner][..., 1]) + 3) < 0.75
    assert np.abs(warp(a, flow) - b)[inner].mean() < 0.5 * np.abs(a - b)[inner].mean()


def test_vector_pass_to_flow_synthetic():
    # Blender, Y up: XY = previous position - current, ZW = current - next position (pixels)
    h, w = 40, 50
    vec = np.zeros((h, w, 4), np.float32)
    vec[..., 0], vec[..., 1] = -3.0, 2.0  # came from 3 px left, 2 px higher up (= 2 rows above)
    vec[..., 2], vec[..., 3] = -3.0, 2.0  # moves on 3 px right, 2 px lower
    back, fwd = vector_pass_to_flow(vec)
    assert np.allclose(back[5, 5], (-3.0, -2.0)) and np.allclose(fwd[5, 5], (3.0, 2.0))


# ---------------------------------------------------------------------------------------------
# Blender: a tiny Cycles scene with a red cube sliding over a checker floor

SCENE_SCRIPT = textwrap.dedent("""
    import sys, bpy
    path, size, nframes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.render.engine = 'CYCLES'
    sc.cycles.device = 'CPU'
    sc.cycles.samples = 4
    sc.cycles.use_denoising = False
    sc.render.resolution_x = sc.render.resolution_y = size
    sc.render.resolution_percentage = 100
    sc.frame_start, sc.frame_end = 1, nframes
    cam = bpy.data.objects.new('cam', bpy.data.cameras.new('cam'))
    sc.collection.objects.link(cam)
    sc.camera = cam
    cam.location = (0, 0, 10)
    sun = bpy.data.objects.new('sun', bpy.data.lights.new('sun', 'SUN'))
    sun.data.energy = 4
    sun.rotation_euler = (0.5, 0.3, 0)
    sc.collection.objects.link(sun)
    sc.world = bpy.data.worlds.new('w')
    def mat(name, color, checker=False):
        m = bpy.data.materials.new(name)
        m.use_nodes = True
        bsdf = m.node_tree.nodes['Principled BSDF']
        bsdf.inputs['Base Color'].default_value = color
        if checker:
            n = m.node_tree.nodes.new('ShaderNodeTexChecker')
            n.inputs['Scale'].default_value = 8
            n.inputs['Color1'].default_value = (0.8, 0.7, 0.3, 1)
            n.inputs['Color2'].default_value = (0.1, 0.3, 0.6, 1)
            m.node_tree.links.new(n.outputs['Color'], bsdf.inputs['Base Color'])
        return m
    bpy.ops.mesh.primitive_plane_add(size=12, location=(0, 0, -1))
    bpy.context.active_object.data.materials.append(mat('floor', (0.5, 0.5, 0.5, 1), checker=True))
    bpy.ops.mesh.primitive_cube_add(size=2)
    cube = bpy.context.active_object
    cube.data.materials.append(mat('red', (0.8, 0.05, 0.03, 1)))
    cube.location = (-2, 0.8, 0)
    cube.keyframe_insert('location', frame=1)
    cube.location = (2, -0.8, 0)
    cube.keyframe_insert('location', frame=nframes)
    bpy.ops.wm.save_as_mainfile(filepath=path)
""")


def _run(args, env_extra=None, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run([PY, *args], capture_output=True, text=True, cwd=str(ROOT), env=env, timeout=300, **kw)


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("temporal_scene")
    script = d / "make_scene.py"
    script.write_text(SCENE_SCRIPT)
    blend = d / "scene.blend"
    r = _run([str(script), str(blend), "48", "6"])
    assert blend.exists(), r.stderr[-2000:]
    style = d / "style.png"
    write_image(style, STYLE)
    return blend, style


def _render(blend, style, out, *extra):
    return _run(["-m", "art_ai_addon", "render", str(blend), "-o", str(out), "--style", str(style),
                 "--method", "color", *extra])


def _mtimes(folder):
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in sorted(folder.rglob("*.png"))}


def test_render_writes_skips_forces_and_chunks(scene_files, tmp_path):
    blend, style = scene_files
    out = tmp_path / "out"
    r = _render(blend, style, out, "--frames", "1-3")
    assert r.returncode == 0, r.stderr[-2000:]
    expected = [str(out / kind / f"{i:04d}.png") for i in (1, 2, 3) for kind in ("raw", "stylized")]
    assert r.stdout.split() == expected  # output paths only on stdout
    raw = [read_image(out / "raw" / f"{i:04d}.png") for i in (1, 2, 3)]
    sty = [read_image(out / "stylized" / f"{i:04d}.png") for i in (1, 2, 3)]
    assert raw[0].shape[:2] == (48, 48)
    assert raw[0][..., :3].std() > 0.1  # a real picture: checker floor and cube
    assert np.abs(raw[0] - raw[2]).max() > 0.3  # the cube moved
    style_mean = STYLE.reshape(-1, 3).mean(0)
    for a, b in zip(raw, sty, strict=True):
        assert np.abs(b[..., :3].reshape(-1, 3).mean(0) - style_mean).sum() < \
            0.5 * np.abs(a[..., :3].reshape(-1, 3).mean(0) - style_mean).sum()
    before = _mtimes(out)
    assert len(before) == 6
    r = _render(blend, style, out, "--frames", "1-3")
    assert r.returncode == 0 and r.stdout.strip() == "", r.stderr[-2000:]
    assert _mtimes(out) == before  # resumed: nothing redone
    (out / "stylized" / "0002.png").unlink()  # a crash after frame 2's render: only its stylization is missing
    r = _render(blend, style, out, "--frames", "1-3")
    assert r.stdout.split() == [str(out / "stylized" / "0002.png")]
    assert _mtimes(out)["raw/0002.png"] == before["raw/0002.png"]
    r = _render(blend, style, out, "--frames", "1-3", "--force")
    assert r.returncode == 0 and len(r.stdout.split()) == 6
    after = _mtimes(out)
    assert all(after[k] != before[k] for k in before if k != "stylized/0002.png")

    chunk = tmp_path / "chunk"
    r = _render(blend, style, chunk, "--frames", "1-6", "--chunk", "2/3")
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (chunk / "raw").iterdir()) == ["0003.png", "0004.png"]
    assert sorted(p.name for p in (chunk / "stylized").iterdir()) == ["0003.png", "0004.png"]
    assert np.abs(read_image(chunk / "raw" / "0003.png") - read_image(out / "raw" / "0003.png")).max() < 0.02


def _read_vector_exr(path):
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return img[:, :, [2, 1, 0, 3]].astype(np.float32)


def test_render_temporal_uses_vector_pass(scene_files, tmp_path):
    blend, style = scene_files
    out = tmp_path / "tmp"
    r = _render(blend, style, out, "--frames", "1-4", "--temporal")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(list((out / "stylized").glob("*.png"))) == 4
    f2, f3 = (read_image(out / "raw" / f"000{i}.png")[..., :3] for i in (2, 3))
    back3, _ = vector_pass_to_flow(_read_vector_exr(out / "vector" / "0003.exr"))
    _, fwd2 = vector_pass_to_flow(_read_vector_exr(out / "vector" / "0002.exr"))
    moving = np.hypot(back3[..., 0], back3[..., 1]) > 1.0
    assert moving.sum() > 30  # the cube
    err_ours = np.abs(warp(f2, back3) - f3)[moving].mean()
    err_still = np.abs(f2 - f3)[moving].mean()
    err_flipped = np.abs(warp(f2, -back3) - f3)[moving].mean()
    assert err_ours < 0.5 * err_still and err_ours < 0.5 * err_flipped, (err_ours, err_still, err_flipped)
    moving2 = np.hypot(fwd2[..., 0], fwd2[..., 1]) > 1.0
    assert np.abs(warp(f3, fwd2) - f2)[moving2].mean() < 0.5 * np.abs(f3 - f2)[moving2].mean()
    # a later chunk picks up from the finished frames before it (coherent across the boundary)
    os.remove(out / "stylized" / "0004.png")
    r = _render(blend, style, out, "--frames", "1-4", "--temporal", "--chunk", "2/2")
    assert r.returncode == 0 and r.stdout.split() == [str(out / "stylized" / "0004.png")], r.stderr[-2000:]


HANDLER_SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    from pathlib import Path
    import bpy
    blend, style, out = sys.argv[1:4]
    bpy.ops.wm.open_mainfile(filepath=blend)
    from art_ai_addon.blender import render as R
    if not hasattr(bpy.types.Scene, "art_ai"):  # the lead's PropertyGroup stands in when not registered
        class Stub(bpy.types.PropertyGroup):
            stylize_on_render: bpy.props.BoolProperty(default=False)
            style_path: bpy.props.StringProperty()
            stylize_method: bpy.props.StringProperty(default="COLOR")
        bpy.utils.register_class(Stub)
        bpy.types.Scene.art_ai = bpy.props.PointerProperty(type=Stub)
    sc = bpy.context.scene
    sc.art_ai.stylize_on_render = True
    sc.art_ai.style_path = style
    sc.art_ai.stylize_method = "COLOR"
    sc.render.filepath = out + "/frame_"
    sc.frame_start, sc.frame_end = 1, 2
    R.register_handlers(); R.register_handlers()
    n_registered = sum(1 for h in bpy.app.handlers.render_write if R._is_ours(h))
    bpy.ops.render.render(animation=True)
    frame = Path(out) / "frame_0001.png"
    digest = hashlib.sha256(frame.read_bytes()).hexdigest()
    again = R.stylize_frame_file(frame, {"style_path": style, "method": "color", "strength": 0.5})
    R.unregister_handlers(); R.unregister_handlers()
    n_after = sum(1 for h in bpy.app.handlers.render_write if R._is_ours(h))
    print("RESULT" + json.dumps({"registered": n_registered, "after": n_after, "again": str(again),
                                 "unchanged": hashlib.sha256(frame.read_bytes()).hexdigest() == digest}))
""")


def test_stylize_on_render_handler(scene_files, tmp_path):
    blend, style = scene_files
    script = tmp_path / "handler.py"
    script.write_text(HANDLER_SCRIPT)
    out = tmp_path / "frames"
    r = _run([str(script), str(blend), str(style), str(out)])
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT")]
    assert line, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(line[0][6:])
    assert res["registered"] == 1 and res["after"] == 0  # idempotent, removes exactly ours
    assert res["unchanged"]  # the rendered frame is never replaced
    assert res["again"] == str(out / "frame_0001_stylized.png")
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == ["frame_0001.png", "frame_0001_stylized.png", "frame_0002.png", "frame_0002_stylized.png"]
    raw = read_image(out / "frame_0002.png")[..., :3]
    sty = read_image(out / "frame_0002_stylized.png")[..., :3]
    style_mean = STYLE.reshape(-1, 3).mean(0)
    assert np.abs(sty.reshape(-1, 3).mean(0) - style_mean).sum() < 0.5 * np.abs(raw.reshape(-1, 3).mean(0)
                                                                                  - style_mean).sum()


ENGINE_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.modules["cv2"] = None  # Blender's own Python: no OpenCV, no torch in this process
    sys.modules["torch"] = None
    from pathlib import Path
    import bpy
    from art_ai_addon.blender import render as R
    frame, style, method, steps = sys.argv[1:5]
    out = R.stylize_frame_file(frame, {"style_path": style, "method": method, "steps": int(steps), "temporal": True,
                                       "frame": 1})
    print("RESULT" + json.dumps({"out": str(out)}))
""")


@pytest.mark.parametrize("method", ["color", "gatys"])
def test_handler_without_opencv_or_torch_in_blenders_process(tmp_path, method):
    """The handler reads and writes frames with Blender's own image code when this process has no OpenCV, and a
    method that needs PyTorch runs in the engine worker (ART_AI_TORCH_PYTHON), not here."""
    frame, style = tmp_path / "frame_0001.png", tmp_path / "style.png"
    write_image(frame, FRAMES[3])
    write_image(style, STYLE)
    script = tmp_path / "engine.py"
    script.write_text(ENGINE_SCRIPT)
    r = _run([str(script), str(frame), str(style), method, "12"], env_extra={"ART_AI_TORCH_PYTHON": PY})
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT")]
    assert line, r.stdout[-2000:] + r.stderr[-2000:]
    out = Path(json.loads(line[0][6:])["out"])
    assert out == tmp_path / "frame_0001_stylized.png"
    sty, raw = read_image(out)[..., :3], read_image(frame)
    assert sty.shape == raw.shape
    if method == "color":  # the palette moved to the style's, as the in-process OpenCV path gives
        ref = stylize(raw, STYLE, method="color")
        assert np.abs(sty - ref).mean() < 2 / 255
    else:  # 12 optimisation steps in the worker moved the colours most of the way to the style's
        style_mean = STYLE.reshape(-1, 3).mean(0)
        assert np.abs(sty.reshape(-1, 3).mean(0) - style_mean).sum() < 0.5 * np.abs(raw.reshape(-1, 3).mean(0)
                                                                                      - style_mean).sum()
