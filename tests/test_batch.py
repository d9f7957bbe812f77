"""`batch JOB.toml`: validation, every task type, resume, --force, --chunk, failures, render steps, Ray."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data as skd

from art_ai_addon.cli import main
from art_ai_addon.imageio import read_image, write_image
from art_ai_addon.stylize import stylize

ROOT = Path(__file__).resolve().parents[1]
S = 64


def _img(arr, size=S):
    arr = cv2.resize(arr, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return arr if arr.ndim == 3 else arr[:, :, None]


BACKGROUND = _img(skd.coffee())
STYLE = np.clip(_img(skd.astronaut())[:, :, [2, 0, 1]] * 0.8 + 0.1, 0, 1)
BRICK = _img(skd.brick(), 48)


def _frames(n=6):
    """A red square sliding over a photograph."""
    out = []
    for t in range(n):
        f = BACKGROUND.copy()
        f[20:36, 5 + 5 * t:21 + 5 * t] = (0.9, 0.1, 0.1)
        out.append(f)
    return out


@pytest.fixture
def ws(tmp_path):
    """A work folder with frames, a style, an exemplar, a scratched photo, its mask and the clean original."""
    for t, f in enumerate(_frames()):
        write_image(tmp_path / "frames" / f"{t:04d}.png", f)
    write_image(tmp_path / "style.png", STYLE)
    write_image(tmp_path / "brick.png", BRICK)
    clean = _img(skd.camera())
    mask = np.zeros((S, S), np.float32)
    cv2.line(mask, (5, 10), (58, 50), 1.0, 2)
    cv2.line(mask, (50, 4), (12, 60), 1.0, 2)
    damaged = clean.copy()
    damaged[mask > 0] = 1.0
    write_image(tmp_path / "clean.png", clean)
    write_image(tmp_path / "damaged.png", damaged)
    write_image(tmp_path / "mask.png", mask, data=True)
    return tmp_path


def _job(folder: Path, text: str, name="job.toml") -> Path:
    p = folder / name
    p.write_text(textwrap.dedent(text))
    return p


def _run(capsys, *argv):
    code = main(["batch", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _mtimes(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in sorted(folder.rglob("*.png"))}


STYLIZE = """
[[step]]
task = "stylize"
input = "frames"
output = "out/sty"
style = "style.png"
method = "color"
"""


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize("body, expected", [
    ('[[step]]\ntask = "denoise"\ninput = "brick.png"\noutput = "o.png"\n', ["step 1", "task", "denoise"]),
    ('[[step]]\ninput = "brick.png"\noutput = "o.png"\n', ["step 1", "task", "missing"]),
    ('[[step]]\ntask = "seamless"\ninput = "brick.png"\noutput = "o.png"\nstrenght = 1\n',
     ["step 1 (seamless)", "strenght", "unknown option"]),
    ('[[step]]\ntask = "stylize"\ninput = "frames"\noutput = "o"\nstyle = "style.png"\nstrenght = 0.5\n',
     ["strenght", "did you mean 'strength'"]),
    ('[[step]]\ntask = "seamless"\ninput = "nothere.png"\noutput = "o.png"\n', ["step 1 (seamless)", "input",
                                                                              "does not exist"]),
    ('[[step]]\ntask = "detect"\ninput = "frames/*.jpg"\noutput = "o"\n', ["input", "matches no files"]),
    ('[[step]]\ntask = "stylize"\ninput = "frames"\noutput = "o"\nstyle = "nostyle.png"\n', ["style",
                                                                                           "does not exist"]),
    ('[[step]]\ntask = "stylize"\ninput = "frames"\noutput = "o"\n', ["style", "missing"]),
    ('[[step]]\ntask = "texture"\ninput = "brick.png"\noutput = "t.png"\nsteps = "ten"\n',
     ["step 1 (texture)", "steps", "expected an integer"]),
    ('[[step]]\ntask = "stylize"\ninput = "frames"\noutput = "o"\nstyle = "style.png"\nstrength = 1.5\n',
     ["strength", "outside 0..1"]),
    ('[[step]]\ntask = "stylize"\ninput = "frames"\noutput = "o"\nstyle = "style.png"\nmethod = "vangogh"\n',
     ["method", "vangogh", "color"]),
    ('[[step]]\ntask = "texture"\ninput = "brick.png"\noutput = "t.png"\nsize = "huge"\n', ["size", "WxH"]),
    ('[[step]]\ntask = "inpaint"\ninput = "damaged.png"\noutput = "i.png"\n', ["inpaint", "mask", "detect"]),
    ('[[step]]\ntask = "seamless"\ninput = "frames"\noutput = "one.png"\n', ["output", "need a folder"]),
    ('[[step]]\ntask = "seamless"\ninput = "brick.png"\n', ["output", "missing"]),
    ('title = "x"\n[[step]]\ntask = "seamless"\ninput = "brick.png"\noutput = "o.png"\n', ["title",
                                                                                        "top-level"]),
    ('[[step]]\ntask = "seamless"\ninput = "brick.png\n', ["not valid TOML"]),
    ('', ["no [[step]] tables"]),
    ('[[step]]\ntask = "stylize"\ninput = "frames"\noutput = "o"\nstyle = "style.png"\nstrength = nan\n',
     ["strength", "finite"]),
    ('[[step]]\ntask = "pbr"\ninput = "brick.png"\noutput = "p"\nstrength = nan\n', ["step 1 (pbr)", "strength",
                                                                                     "finite"]),
    ('[[step]]\ntask = "texture"\ninput = "brick.png"\noutput = "t.png"\nsteps = 0\n', ["steps", "1 or more"]),
    # options come from the method table: its ranges, and only the options the chosen method takes
    ('[[step]]\ntask = "texture"\ninput = "brick.png"\noutput = "t.png"\nmemory_mb = 10\n',
     ["step 1 (texture)", "memory_mb", "64 or more"]),
    ('[[step]]\ntask = "stylize"\ninput = "frames"\noutput = "o"\nstyle = "style.png"\nencoder = "vgg19"\n'
     'method = "color"\n', ["step 1 (stylize)", "encoder", "not an option", "'color'"]),
    # two steps writing one file: the second would be "up to date" and its work lost
    ('[[step]]\ntask = "seamless"\ninput = "brick.png"\noutput = "out/sty/0002.png"\n',
     ["step 1 (seamless)", "0002.png", "also written by", "(stylize) for 0002.png"]),
])
def test_invalid_job_exits_2_with_one_line_and_runs_nothing(ws, capsys, body, expected):
    # a valid first step proves that nothing runs before the whole file is checked
    chained = body.startswith("[[step]]")
    job = _job(ws, STYLIZE + "\n" + body if chained else body)
    code, out, err = _run(capsys, job)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("art_ai: error: job.toml"), err
    for word in expected:
        assert (word.replace("step 1", "step 2") if chained else word) in lines[0], (word, lines[0])
    assert out == "" and not (ws / "out").exists()


# ---------------------------------------------------------------------------------------------
# Every task type, resume, force


def _wrap_error(img):
    """Mean jump across the wrap-around edges relative to the mean neighbour difference inside."""
    g = img.mean(axis=2)
    wrap = (np.abs(g[:, 0] - g[:, -1]).mean() + np.abs(g[0] - g[-1]).mean()) / 2
    inner = (np.abs(np.diff(g, axis=1)).mean() + np.abs(np.diff(g, axis=0)).mean()) / 2
    return wrap / inner


def _assert_repaired(ws, path):
    """Closer to the clean photo inside the scratches' mask, untouched outside it."""
    mask = read_image(ws / "mask.png", data=True)[..., 0] > 0.5
    clean, damaged = read_image(ws / "clean.png"), read_image(ws / "damaged.png")
    rep = read_image(path)
    assert np.abs(rep - clean)[mask].mean() < 0.3 * np.abs(damaged - clean)[mask].mean()
    assert np.abs(rep - damaged)[~mask].max() < 1.5 / 255


def test_every_task_through_a_job_then_resume_and_force(ws, capsys):
    job = _job(ws, STYLIZE + """
    [[step]]
    task = "texture"
    input = "brick.png"
    output = "out/tex.png"
    size = "96x80"
    method = "patch"
    seed = 3
    pbr = true

    [[step]]
    name = "a photo made tileable"
    task = "seamless"
    input = "frames/0000.png"
    output = "out/seam.png"

    [[step]]
    task = "pbr"
    input = "out/tex.png"
    output = "out/pbr"

    [[step]]
    task = "detect"
    input = "damaged.png"
    output = "out/damage.png"
    sensitivity = 0.6

    [[step]]
    task = "inpaint"
    input = ["damaged.png"]
    mask = "mask.png"
    output = "out/repaired.png"
    method = "telea"
    """)
    code, out, err = _run(capsys, job)
    assert code == 0, err
    o = ws / "out"
    written = out.split()
    assert len(written) == 6 + 5 + 1 + 4 + 1 + 1 and all(Path(p).is_file() for p in written)
    assert "11 done, 0 up to date" in err.splitlines()[-1]

    # stylize: every frame takes the style's colours
    style_mean = STYLE.reshape(-1, 3).mean(0)
    for t, f in enumerate(_frames()):
        r = read_image(o / "sty" / f"{t:04d}.png")
        assert r.shape == f.shape
        assert np.abs(r.reshape(-1, 3).mean(0) - style_mean).sum() < 0.5 * np.abs(f.reshape(-1, 3).mean(0)
                                                                                 - style_mean).sum()
    # texture: the asked size, wraps, with its maps; the chained pbr step used the texture itself
    tex = read_image(o / "tex.png")
    assert tex.shape[:2] == (80, 96)
    assert _wrap_error(tex) < 2.0
    for key in ("height", "normal", "roughness", "ao"):
        assert read_image(o / "tex_pbr" / f"{key}.png", data=True).shape[:2] == (80, 96)
        assert read_image(o / "pbr" / f"{key}.png", data=True).shape[:2] == (80, 96)
    normal = read_image(o / "pbr" / "normal.png", data=True)
    assert normal[..., 2].mean() > 0.7 and abs(normal[..., 0].mean() - 0.5) < 0.1
    # seamless: same size, and the wrap seam of the photo is gone
    seam = read_image(o / "seam.png")
    photo = _frames()[0]
    assert seam.shape == photo.shape and _wrap_error(seam) < 0.5 * _wrap_error(photo)
    # detect: the scratches score higher than the rest
    mask = read_image(ws / "mask.png", data=True)[..., 0] > 0.5
    found = read_image(o / "damage.png", data=True)[..., 0]
    assert found[mask].mean() > 0.5 and found[mask].mean() > 4 * found[~mask].mean()
    # inpaint: closer to the clean photo inside the mask, untouched outside it
    _assert_repaired(ws, o / "repaired.png")

    # resume: nothing is redone, nothing printed
    before = _mtimes(o)
    code, out, err = _run(capsys, job)
    assert code == 0 and out == "" and _mtimes(o) == before
    assert "0 done, 11 up to date" in err
    # an input that changed: only what depends on it is redone
    now = time.time_ns()  # newer than every output so far, older than what the next run writes
    os.utime(ws / "frames" / "0002.png", ns=(now, now))
    code, out, err = _run(capsys, job)
    assert code == 0 and out.split() == [str(o / "sty" / "0002.png")]
    # a half-finished item (one of its maps missing) is redone
    (o / "pbr" / "ao.png").unlink()
    code, out, _ = _run(capsys, job)
    assert sorted(Path(p).name for p in out.split()) == ["ao.png", "height.png", "normal.png", "roughness.png"]
    # --force redoes everything
    before = _mtimes(o)
    code, out, _ = _run(capsys, job, "--force")
    assert code == 0 and len(out.split()) == 18
    assert all(v != before[k] for k, v in _mtimes(o).items())
    # and an edited job file makes every output out of date
    now = time.time_ns()
    os.utime(job, ns=(now, now))
    code, out, _ = _run(capsys, job)
    assert len(out.split()) == 18


def test_every_method_of_the_table_is_a_job_choice_and_smooth_inpaints(ws, capsys):
    from art_ai_addon import methods
    from art_ai_addon.batch.schema import FEATURE, OPTIONS

    for task, feature in FEATURE.items():
        assert OPTIONS[task]["method"].choices == methods.names(feature)
        assert {o.name for o in methods.cli_options(feature)} <= set(OPTIONS[task])
    # `smooth`, the CLI's method that job files used to refuse, runs from a job and repairs the scratches
    job = _job(ws, """
    [[step]]
    task = "inpaint"
    input = "damaged.png"
    mask = "mask.png"
    output = "out/smooth.png"
    method = "smooth"
    """)
    code, out, err = _run(capsys, job)
    assert code == 0, err
    _assert_repaired(ws, ws / "out" / "smooth.png")


def test_ray_asks_for_a_gpu_only_for_torch_methods():
    from art_ai_addon import methods
    from art_ai_addon.batch.ray import wants_gpu
    from art_ai_addon.batch.schema import Step

    for m in methods.METHODS:
        task = "render" if m.feature == "stylize" else m.feature
        step = Step(1, task, {"method": m.name})
        assert wants_gpu(step, 1.0) == ("torch" in m.needs), m.name  # numpy/OpenCV methods never hold a GPU
        assert not wants_gpu(Step(1, task, {"method": m.name, "device": "cpu"}), 1.0)
        assert not wants_gpu(step, 0.0)
    assert not any(wants_gpu(Step(1, t, {}), 1.0) for t in ("seamless", "pbr", "detect"))


def test_failing_item_does_not_stop_the_others(ws, capsys):
    (ws / "frames" / "0003.png").write_bytes(b"not an image at all")
    job = _job(ws, STYLIZE + """
    [[step]]
    task = "detect"
    input = "frames/*.png"
    output = "out/masks"
    """)
    code, out, err = _run(capsys, job)
    assert code == 1
    names = sorted(Path(p).relative_to(ws / "out").as_posix() for p in out.split())
    good = [f"{t:04d}.png" for t in (0, 1, 2, 4, 5)]
    assert names == sorted([f"masks/{n}" for n in good] + [f"sty/{n}" for n in good])
    assert "0003.png" in err and "1 failed" not in err and "2 failed" in err


# ---------------------------------------------------------------------------------------------
# Chunks


def test_chunks_split_the_items_and_join_temporal_sequences(ws, capsys):
    job = _job(ws, STYLIZE)
    seen = []
    for i in (1, 2, 3):
        code, out, _ = _run(capsys, job, "--chunk", f"{i}/3")
        assert code == 0
        seen.append([Path(p).name for p in out.split()])
    assert seen == [["0000.png", "0001.png"], ["0002.png", "0003.png"], ["0004.png", "0005.png"]]

    # temporal: the second half alone continues from frame 2, re-stylized but not written
    full = _job(ws, STYLIZE.replace('"out/sty"', '"full"') + "temporal = true\n", "full.toml")
    half = _job(ws, STYLIZE.replace('"out/sty"', '"half"') + "temporal = true\n", "half.toml")
    assert _run(capsys, full)[0] == 0
    code, out, err = _run(capsys, half, "--chunk", "2/2")
    assert code == 0 and [Path(p).name for p in out.split()] == ["0003.png", "0004.png", "0005.png"]
    assert "re-stylizing 0002.png" in err and not (ws / "half" / "0002.png").exists()
    frame3 = _frames()[3]
    a, b = read_image(ws / "full" / "0003.png"), read_image(ws / "half" / "0003.png")
    cold = stylize(frame3, STYLE, method="color")  # what a chunk without the warm-up would start with
    assert np.abs(b - a).mean() < 0.7 * np.abs(cold - a).mean()


def test_stylize_command_chunk_of_a_folder(ws, capsys):
    code = main(["stylize", str(ws / "frames"), "--style", str(ws / "style.png"), "--method", "color",
                 "-o", str(ws / "c"), "--chunk", "2/6"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.split() == [str(ws / "c" / "0001.png")]


# ---------------------------------------------------------------------------------------------
# Render steps (a tiny Cycles scene), through the real command line


SCENE_SCRIPT = textwrap.dedent("""
    import sys, bpy
    path = sys.argv[1]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.render.engine = 'CYCLES'
    sc.cycles.device = 'CPU'
    sc.cycles.samples = 2
    sc.cycles.use_denoising = False
    sc.render.resolution_x = sc.render.resolution_y = 32
    sc.render.resolution_percentage = 100
    sc.frame_start, sc.frame_end = 1, 3
    cam = bpy.data.objects.new('cam', bpy.data.cameras.new('cam'))
    sc.collection.objects.link(cam)
    sc.camera = cam
    cam.location = (0, 0, 10)
    sun = bpy.data.objects.new('sun', bpy.data.lights.new('sun', 'SUN'))
    sun.data.energy = 4
    sc.collection.objects.link(sun)
    sc.world = bpy.data.worlds.new('w')
    bpy.ops.mesh.primitive_plane_add(size=12, location=(0, 0, -1))
    bpy.ops.mesh.primitive_cube_add(size=3)
    cube = bpy.context.active_object
    m = bpy.data.materials.new('red')
    m.use_nodes = True
    m.node_tree.nodes['Principled BSDF'].inputs['Base Color'].default_value = (0.8, 0.05, 0.03, 1)
    cube.data.materials.append(m)
    cube.location = (-2, 0, 0)
    cube.keyframe_insert('location', frame=1)
    cube.location = (2, 0, 0)
    cube.keyframe_insert('location', frame=3)
    bpy.ops.wm.save_as_mainfile(filepath=path)
""")


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "art_ai_addon", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_render_step_then_a_step_on_its_frames(ws):
    script = ws / "scene.py"
    script.write_text(SCENE_SCRIPT)
    subprocess.run([sys.executable, str(script), str(ws / "shot.blend")], capture_output=True, timeout=120)
    assert (ws / "shot.blend").exists()
    job = _job(ws, """
    [[step]]
    task = "render"
    input = "shot.blend"
    output = "shot"
    style = "style.png"
    method = "color"

    [[step]]
    task = "detect"
    input = "shot/raw"
    output = "shot/damage"
    """)
    r = _cli("batch", job)
    assert r.returncode == 0, r.stderr[-3000:]
    expected = [ws / "shot" / kind / f"{f:04d}.png" for f in (1, 2, 3) for kind in ("raw", "stylized")]
    assert sorted(r.stdout.split()) == sorted(map(str, expected + [ws / "shot" / "damage" / f"{f:04d}.png"
                                                                   for f in (1, 2, 3)]))
    raw = [read_image(ws / "shot" / "raw" / f"{f:04d}.png") for f in (1, 2, 3)]
    assert raw[0].shape[:2] == (32, 32) and np.abs(raw[0] - raw[2]).max() > 0.3  # the cube moved
    before = _mtimes(ws / "shot")
    r = _cli("batch", job)
    assert r.returncode == 0 and r.stdout == "" and _mtimes(ws / "shot") == before
    (ws / "shot" / "stylized" / "0002.png").unlink()
    r = _cli("batch", job)
    assert r.stdout.split() == [str(ws / "shot" / "stylized" / "0002.png")]
    assert _mtimes(ws / "shot")["raw/0002.png"] == before["raw/0002.png"]


# ---------------------------------------------------------------------------------------------
# Ray


def test_ray_runs_the_same_job_on_a_local_instance(ws, capsys):
    import ray

    job = _job(ws, STYLIZE + """
    temporal = true

    [[step]]
    task = "seamless"
    input = "frames"
    output = "out/seam"
    """)
    local = _job(ws, (ws / "job.toml").read_text().replace('"out/', '"local/'), "local.toml")
    assert _run(capsys, local)[0] == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        code, out, err = _run(capsys, job, "--ray")
        assert code == 0, err
        assert len(out.split()) == 12 and "Ray: 2 CPU" in err
        for t in range(6):
            name = f"{t:04d}.png"
            # independent items: identical to the local run
            assert np.array_equal(read_image(ws / "out" / "seam" / name), read_image(ws / "local" / "seam" / name))
            # the temporal sequence was cut into 2 segments; the second starts from frame 2 re-stylized
            diff = np.abs(read_image(ws / "out" / "sty" / name) - read_image(ws / "local" / "sty" / name))
            assert diff.mean() < (0.01 if t >= 3 else 1e-6), (t, diff.mean())
        before = _mtimes(ws / "out")
        code, out, _ = _run(capsys, job, "--ray")
        assert code == 0 and out == "" and _mtimes(ws / "out") == before
    finally:
        ray.shutdown()


def test_ray_missing_says_how_to_install(ws, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, out, err = _run(capsys, _job(ws, STYLIZE), "--ray")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "art_ai_addon[ray]" in err
