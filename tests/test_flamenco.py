"""The Flamenco 3 job type in farm/flamenco/: compiled with node against the documented job-compiler API, and
its commands run for real (with `python -m art_ai_addon` standing in for `blender -b FILE --command art_ai`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from art_ai_addon.progress import chunk_slice
from art_ai_addon.imageio import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "farm" / "flamenco" / "art_ai_stylize.js"
HARNESS = ROOT / "tests" / "flamenco_harness.js"
NODE = shutil.which("node")

BASE = {"frames": "1-10", "chunk_size": 4, "style": "/styles/ink.png", "method": "color",
        "render_output_root": "/farm/out", "render_output_path": "/farm/out/shot/{timestamp}",
        "blendfile": "/farm/shots/shot.blend", "temporal": False}


def compile_job(**settings):
    r = subprocess.run([NODE, str(HARNESS), str(SCRIPT), json.dumps({"name": "shot", "settings": {**BASE,
                                                                                                  **settings}})],
                       capture_output=True, text=True, timeout=60)
    return r


def _compiled(**settings):
    r = compile_job(**settings)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _args(task):
    (cmd,) = task["commands"]
    assert cmd["name"] == "blender-render"
    p = cmd["parameters"]
    assert p["exe"] == "{blender}" and p["exeArgs"] == "{blenderArgs}" and p["blendfile"] == BASE["blendfile"]
    return p["args"]


def _opt(args, key):
    return args[args.index(key) + 1] if key in args else None


def test_node_is_there():
    assert NODE, "node (v18+) is needed to compile the Flamenco job type"


def test_job_type_settings():
    jt = _compiled()["jobType"]
    assert jt["label"] == "Art AI Stylize"
    settings = {s["key"]: s for s in jt["settings"]}
    for key in ("frames", "chunk_size", "style", "method", "strength", "temporal", "blendfile", "render_output_path"):
        assert key in settings
    assert settings["method"]["choices"] == ["auto", "gatys", "fast", "adain", "color"]
    assert settings["style"]["subtype"] == "file_path" and settings["chunk_size"]["type"] == "int32"


def test_chunks_cover_every_frame_once():
    job = _compiled(frames="1-10", chunk_size=4)
    tasks = job["tasks"]
    assert len(tasks) == 3 and all(t["type"] == "blender" and not t["dependencies"] for t in tasks)
    covered = []
    for i, task in enumerate(tasks, start=1):
        args = _args(task)
        assert args[:4] == ["--command", "art_ai", "render", BASE["blendfile"]]
        # {timestamp} filled in from the job's creation time, and written back for the web interface
        assert _opt(args, "-o") == job["settings"]["render_output_path"]
        assert _opt(args, "-o").startswith("/farm/out/shot/2024-01-0") and "{" not in _opt(args, "-o")
        assert _opt(args, "--frames") == "1-10" and _opt(args, "--chunk") == f"{i}/3"
        assert _opt(args, "--style") == BASE["style"] and _opt(args, "--method") == "color"
        assert "--temporal" not in args
        mine = chunk_slice(list(range(1, 11)), (i, 3))  # what `render --chunk i/3` renders
        assert task["name"] == f"render-stylize-{mine[0]}-{mine[-1]}"
        covered += mine
    assert covered == list(range(1, 11))


def test_temporal_stylize_tasks_wait_for_their_frames_and_the_one_before():
    tasks = _compiled(frames="101-130", chunk_size=10, temporal=True, strength=0.5, steps=20,
                      preserve_color=True, device="cuda")["tasks"]
    renders, stylizes = tasks[:3], tasks[3:]
    assert [t["name"] for t in renders] == ["render-101-110", "render-111-120", "render-121-130"]
    for t in renders:  # raw frames only
        assert "--style" not in _args(t) and not t["dependencies"]
    for i, t in enumerate(stylizes):
        args = _args(t)
        assert _opt(args, "--chunk") == f"{i + 1}/3" and "--temporal" in args and "--preserve-color" in args
        assert _opt(args, "--strength") == "0.5" and _opt(args, "--steps") == "20" and _opt(args, "--device") == "cuda"
        assert t["dependencies"] == [renders[i]["name"]] + ([renders[i - 1]["name"]] if i else [])


@pytest.mark.parametrize("frames", ["1-5,9", "ten", "9-3"])
def test_bad_frame_range_is_refused(frames):
    r = compile_job(frames=frames)
    assert r.returncode != 0 and "Art AI Stylize: frames" in r.stderr


SCENE = textwrap.dedent("""
    import sys, bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.render.engine = 'CYCLES'
    sc.cycles.device = 'CPU'
    sc.cycles.samples = 2
    sc.cycles.use_denoising = False
    sc.render.resolution_x = sc.render.resolution_y = 32
    sc.frame_start, sc.frame_end = 1, 4
    cam = bpy.data.objects.new('cam', bpy.data.cameras.new('cam'))
    sc.collection.objects.link(cam)
    sc.camera = cam
    cam.location = (0, 0, 10)
    sun = bpy.data.objects.new('sun', bpy.data.lights.new('sun', 'SUN'))
    sc.collection.objects.link(sun)
    sc.world = bpy.data.worlds.new('w')
    bpy.ops.mesh.primitive_plane_add(size=12, location=(0, 0, -1))
    bpy.ops.mesh.primitive_cube_add(size=3)
    cube = bpy.context.active_object
    cube.location = (-2, 0, 0)
    cube.keyframe_insert('location', frame=1)
    cube.location = (2, 0, 0)
    cube.keyframe_insert('location', frame=4)
    bpy.ops.wm.save_as_mainfile(filepath=sys.argv[1])
""")


def test_compiled_commands_render_and_stylize_a_shot(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    (tmp_path / "scene.py").write_text(SCENE)
    blend = tmp_path / "shot.blend"
    subprocess.run([sys.executable, str(tmp_path / "scene.py"), str(blend)], capture_output=True, timeout=120)
    style = tmp_path / "style.png"
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    write_image(style, np.stack([xx, 0.3 + 0 * xx, yy], axis=2).astype(np.float32))
    out = tmp_path / "out"
    settings = dict(frames="1-4", chunk_size=2, style=str(style), blendfile=str(blend), temporal=True,
                    render_output_path=str(out))
    tasks = {t["name"]: t for t in _compiled(**settings)["tasks"]}
    done: set = set()
    logs = {}
    # a farm may run the second stylize chunk before the first: it must not need the first one's output
    for name in ["render-1-2", "render-3-4", "stylize-3-4", "stylize-1-2"]:
        task = tasks[name]
        assert set(task["dependencies"]) <= done, name
        args = task["commands"][0]["parameters"]["args"]
        assert args[:2] == ["--command", "art_ai"]
        r = subprocess.run([sys.executable, "-m", "art_ai_addon", *args[2:]], capture_output=True, text=True,
                           env=env, timeout=300)
        assert r.returncode == 0, (name, r.stderr[-2000:])
        logs[name] = r.stderr
        done.add(name)
    style_mean = read_image(style).reshape(-1, 3).mean(0)
    for f in range(1, 5):
        raw = read_image(out / "raw" / f"{f:04d}.png")[..., :3]
        sty = read_image(out / "stylized" / f"{f:04d}.png")[..., :3]
        assert raw.shape[:2] == (32, 32)
        assert np.abs(sty.reshape(-1, 3).mean(0) - style_mean).sum() < \
            0.5 * np.abs(raw.reshape(-1, 3).mean(0) - style_mean).sum()
    assert "frame 2: re-stylizing" in logs["stylize-3-4"]  # carried on from the frame before the chunk
