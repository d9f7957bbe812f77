"""Job runner: engine work off the main thread in the UI, synchronous in background mode.

An operator subclasses `JobOperator` and implements `prepare(context)` (main thread: read bpy, return an
`EngineCall` (runner.py: run here or in the engine worker) or any `work(progress, cancel)` callable that never
touches bpy) and `finish(context, result)` (main thread: write
results into bpy). Errors become `self.report({'ERROR'}, ...)` and `{'CANCELLED'}`, never a half-made result.
"""

from __future__ import annotations

import queue
import threading
import traceback

from typing import TYPE_CHECKING

import bpy

from ..errors import ArtAIError, Cancelled
from ..progress import StderrProgress
from .runner import EngineCall, plan


class Job:
    def __init__(self, label: str, work):
        self.label = label
        self.work = work
        self.cancel = threading.Event()
        self.updates: queue.Queue = queue.Queue()
        self.result = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def progress(self, fraction: float, message: str = "") -> None:
        self.updates.put((float(fraction), message))

    def run(self) -> None:
        try:
            self.result = self.work(self.progress, self.cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which reports it
            self.error = exc
            if not isinstance(exc, ArtAIError | Cancelled):
                traceback.print_exc()
        finally:
            self.done.set()

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name=f"art_ai:{self.label}", daemon=True)
        self.thread.start()


_jobs: dict[str, Job] = {}


def running_job(scene) -> Job | None:
    job = _jobs.get(scene.name)
    return job if job is not None and not job.done.is_set() else None


def cancel_all() -> None:
    """Cancel every job and wait briefly (used by unregister so no thread outlives the add-on)."""
    for job in list(_jobs.values()):
        job.cancel.set()
        if job.thread is not None:
            job.thread.join(timeout=5.0)
    _jobs.clear()


def _set_state(scene, running: bool, label: str = "", fraction: float = 0.0, message: str = "") -> None:
    settings = getattr(scene, "art_ai", None)
    if settings is None:
        return
    settings.job_running = running
    settings.job_label = label
    settings.job_progress = fraction
    settings.job_message = message


def _redraw(context) -> None:
    screen = getattr(context, "screen", None)
    if screen is None:
        return
    for area in screen.areas:
        if area.type in {"IMAGE_EDITOR", "PROPERTIES", "NODE_EDITOR", "STATUSBAR"}:
            area.tag_redraw()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ArtAIError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc} (details in the system console)"


if TYPE_CHECKING:  # every user of the mixin also inherits bpy.types.Operator (report, bl_idname, ...)
    _OperatorBase = bpy.types.Operator
else:
    _OperatorBase = object


class JobOperator(_OperatorBase):
    """Mixin for operators whose work is an engine call."""

    job_label = "Art AI"
    _job: Job | None = None
    _timer = None

    def prepare(self, context):  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(self, context, result) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- entry points

    def execute(self, context):
        scene = context.scene
        busy = running_job(scene)
        if busy is not None:
            self.report({"ERROR"}, f"Art AI is already running '{busy.label}' in this scene; wait for it or "
                                   "cancel it (Esc or the Cancel button) first")
            return {"CANCELLED"}
        try:
            work = self.prepare(context)
            if isinstance(work, EngineCall):  # in this process or in the engine worker; refused here if neither
                work.where = plan(work, work.config.get("python"))
        except ArtAIError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if bpy.app.background or context.window_manager is None or not context.window_manager.windows \
                or getattr(self, "synchronous", False):
            return self._run_now(context, work)
        self.start_job(context, work)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def start_job(self, context, work) -> Job:
        """The job off the main thread; `modal` (timer events) moves its progress into the scene."""
        job = Job(self.job_label, work)
        _jobs[context.scene.name] = job
        self._job = job
        _set_state(context.scene, True, self.job_label, 0.0, "starting")
        job.start()
        return job

    def _run_now(self, context, work):
        # batch runs: the CLI's progress lines on stderr; in a window the UI shows nothing for a synchronous run
        progress = StderrProgress(prefix=f"{self.job_label} ", quiet=not bpy.app.background)

        try:
            result = work(progress, threading.Event())
            self.finish(context, result)
        except Cancelled:
            self.report({"WARNING"}, f"{self.job_label}: cancelled; nothing was changed")
            return {"CANCELLED"}
        except Exception as exc:  # noqa: BLE001 - every failure becomes a report, never a traceback dialog
            if not isinstance(exc, ArtAIError):
                traceback.print_exc()
            self.report({"ERROR"}, _describe(exc))
            return {"CANCELLED"}
        finally:
            from .bridge import release_buffers

            release_buffers()
        return {"FINISHED"}

    def modal(self, context, event):
        job = self._job
        if job is None:
            return {"CANCELLED"}
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel.set()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        latest = None
        while not job.updates.empty():
            latest = job.updates.get_nowait()
        scene = context.scene
        if latest is not None:
            _set_state(scene, True, job.label, latest[0], latest[1])
            if context.workspace is not None:
                context.workspace.status_text_set(f"Art AI: {job.label} {int(latest[0] * 100)}% {latest[1]}"
                                                  "  (Esc to cancel)")
            _redraw(context)
        if not job.done.is_set():
            return {"PASS_THROUGH"}
        return self._end(context, job)

    def _end(self, context, job: Job):
        from .bridge import release_buffers

        release_buffers()  # the reusable pixel buffers of this job (hundreds of MB at 4K)
        wm = context.window_manager
        if self._timer is not None and wm is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        _set_state(context.scene, False)
        _jobs.pop(context.scene.name, None)
        _redraw(context)
        if job.error is not None:
            if isinstance(job.error, Cancelled):
                self.report({"WARNING"}, f"{job.label}: cancelled; nothing was changed")
            else:
                self.report({"ERROR"}, _describe(job.error))
            return {"CANCELLED"}
        try:
            self.finish(context, job.result)
        except Exception as exc:  # noqa: BLE001
            if not isinstance(exc, ArtAIError):
                traceback.print_exc()
            self.report({"ERROR"}, _describe(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class ARTAI_OT_cancel_job(bpy.types.Operator):
    """Stop the running Art AI job; nothing half-made is written"""

    bl_idname = "art_ai.cancel_job"
    bl_label = "Cancel Art AI Job"
    bl_options = {"REGISTER"}

    def execute(self, context):
        job = running_job(context.scene)
        if job is None:
            self.report({"INFO"}, "No Art AI job is running")
            return {"CANCELLED"}
        job.cancel.set()
        self.report({"INFO"}, f"Cancelling {job.label}")
        return {"FINISHED"}


classes = (ARTAI_OT_cancel_job,)
