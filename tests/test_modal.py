"""The UI path of a job operator: the bpy module has no event loop, so the operator's own `modal` is driven with
timer and Esc events made for the purpose, on a job started the way `execute` starts it in a window."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import addon_module, skimage_rgb
from test_extension import new_image, rgba


def fake_operator(cls, **props):
    """An object with the operator's methods and properties (a registered Operator cannot be made in Python)."""
    methods = {}
    for base in reversed(cls.__mro__):
        if base.__module__.startswith("bpy"):
            continue
        methods.update({k: v for k, v in vars(base).items() if not k.startswith("__")})
    fake = type(f"Fake{cls.__name__}", (), methods)()
    fake.reports = []
    fake.report = lambda kind, text: fake.reports.append((sorted(kind)[0], text))
    fake.output = ""
    for k, v in props.items():
        setattr(fake, k, v)
    return fake


def timer():
    return SimpleNamespace(type="TIMER", value="NOTHING")


def drive(fake, context, until, limit=30.0):
    """Send timer events until `until(result)` holds; returns the last modal result."""
    end = time.monotonic() + limit
    result = None
    while time.monotonic() < end:
        result = fake.modal(context, timer())
        if until(result):
            return result
        time.sleep(0.02)
    raise AssertionError(f"modal never reached the state (last {result})")


@pytest.fixture
def slow_work(blender):
    core = addon_module("art_ai_addon.core")
    seen = {}

    def work(progress, cancel):
        rep = core.reporter(progress, cancel)
        seen["thread"] = threading.current_thread()
        for i in range(400):
            rep(i / 400, f"step {i}")
            time.sleep(0.01)
        return np.zeros((8, 8, 4), np.float32)

    return work, seen


def test_progress_reaches_the_scene_and_esc_cancels(blender, slow_work):
    bpy = blender
    ops = addon_module("art_ai_addon.blender.operators")
    jobs = addon_module("art_ai_addon.blender.jobs")
    new_image(bpy, "m_src", rgba(skimage_rgb("astronaut", 32)))
    work, seen = slow_work
    fake = fake_operator(ops.ARTAI_OT_stylize, image="m_src")
    fake._src_name = "m_src"
    before = set(bpy.data.images.keys())
    ctx = bpy.context
    job = fake.start_job(ctx, work)
    assert ctx.scene.art_ai.job_running and jobs.running_job(ctx.scene) is job
    assert drive(fake, ctx, lambda r: ctx.scene.art_ai.job_progress > 0.02) == {"PASS_THROUGH"}
    assert ctx.scene.art_ai.job_message.startswith("step ")
    assert seen["thread"] is not threading.main_thread()  # the work ran off the main thread
    # a second job on the same scene is refused while this one runs
    with pytest.raises(RuntimeError, match="already running"):
        bpy.ops.art_ai.stylize(image="m_src", style="m_src", method="COLOR")
    assert fake.modal(ctx, SimpleNamespace(type="ESC", value="PRESS")) == {"PASS_THROUGH"}
    assert drive(fake, ctx, lambda r: r == {"CANCELLED"}) == {"CANCELLED"}
    assert any(kind == "WARNING" and "cancelled" in text for kind, text in fake.reports)
    assert not ctx.scene.art_ai.job_running and jobs.running_job(ctx.scene) is None
    assert set(bpy.data.images.keys()) == before  # nothing written


def test_the_result_is_written_on_the_main_thread(blender):
    bpy = blender
    ops = addon_module("art_ai_addon.blender.operators")
    new_image(bpy, "m2_src", rgba(skimage_rgb("chelsea", 32)))
    new_image(bpy, "m2_style", rgba(skimage_rgb("coffee", 32)))
    fake = fake_operator(ops.ARTAI_OT_stylize, image="m2_src", style="m2_style", style_path="", method="COLOR",
                         strength=1.0, preserve_color=False, mask="", model="", steps=0, seed=0, preview=False,
                         use_layers=False)
    ctx = bpy.context
    call = fake.prepare(ctx)  # what execute does on the main thread
    writer = {}
    finish = fake.finish

    def recording_finish(context, result):
        writer["thread"] = threading.current_thread()
        return finish(context, result)

    fake.finish = recording_finish
    fake.start_job(ctx, call)
    assert drive(fake, ctx, lambda r: r == {"FINISHED"}) == {"FINISHED"}
    assert writer["thread"] is threading.main_thread()
    assert "m2_src.stylized" in bpy.data.images
    assert any("Stylized with color" in text for _kind, text in fake.reports)
