"""Where an engine task runs: in Blender's process when it has what the method needs, else in the engine worker.

Blender's process runs numpy methods (and OpenCV ones where the build bundles OpenCV). Methods that need
PyTorch run in the worker whenever a PyTorch Python is set (environment variable ART_AI_TORCH_PYTHON > the
preference "PyTorch Python" > the environment the extension created), and in this process only when it has torch
itself (the `bpy` module in a pipeline venv; a stock Blender never does). No bpy here except for the preference.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import methods
from ..errors import NotAvailableError

ENV_VAR = "ART_AI_TORCH_PYTHON"
ENV_FOLDER = "torch_env"  # inside the extension's user folder: the environment "Create PyTorch environment" makes


@dataclass
class EngineCall:
    """One engine task and its plain arguments: what an operator hands to the job runner."""

    task: str
    kwargs: dict
    method: str | None = None  # the method name, for the needs check (stylize, texture, inpaint)
    config: dict = field(default_factory=dict)  # threads, models_dir: applied where the task runs
    info: dict = field(default_factory=dict)  # filled with what the task reported (method used, notes)
    where: str = ""  # "process" or "worker", decided by `plan`

    def __call__(self, progress, cancel):
        value, info = execute(self, progress, cancel)
        self.info.update(info)
        return value


def env_python(user_dir: str | None) -> str | None:
    """The interpreter of the environment the extension made, if it exists."""
    if not user_dir:
        return None
    base = Path(user_dir) / ENV_FOLDER
    for rel in ("bin/python", "Scripts/python.exe"):
        if (base / rel).exists():
            return str(base / rel)
    return None


def torch_python(preference: str = "", user_dir: str | None = None) -> tuple[str | None, str]:
    """(path or None, where it came from) in the contract's order."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env, ENV_VAR
    if preference:
        return preference, "preference"
    made = env_python(user_dir)
    if made:
        return made, "created environment"
    return None, ""


def plan(call: EngineCall, python: str | None) -> str:
    """'process' or 'worker' for this call, or NotAvailableError with the one line that says what to do."""
    try:
        needs = methods.needs_of(call.task, call.method)
    except Exception:  # an unknown method: let the engine say so where it runs
        needs = ()
    missing = methods.missing_here(needs)
    if "torch" in needs and python:
        return "worker"
    if not missing:
        return "process"
    if python:
        return "worker"
    from ..worker import not_available

    raise not_available(missing)


def execute(call: EngineCall, progress, cancel):
    """(value, info) of the call, where `call.where` says (planned if it is not yet)."""
    from .. import tasks

    if not call.where:
        call.where = plan(call, call.config.get("python"))
    if call.where == "process":
        from ..core import set_threads
        from ..imageio import set_max_pixels

        if "threads" in call.config:
            set_threads(call.config["threads"])
        set_max_pixels(call.config.get("max_pixels") or None)
        return tasks.run(call.task, call.kwargs, progress=progress, cancel=cancel)
    from .. import worker

    python = call.config.get("python")
    if not python:
        raise NotAvailableError("no PyTorch Python is set for the engine worker")
    config = {k: v for k, v in call.config.items() if k in ("threads", "models_dir", "max_pixels")}
    # results stay views of the worker's shared files until written into Blender (one copy fewer per frame)
    return worker.client(python).run(call.task, call.kwargs, progress=progress, cancel=cancel, config=config,
                                     copy=False)


def stop_workers() -> None:
    if "art_ai_addon.worker" in sys.modules or any(m.endswith(".art_ai_addon.worker") for m in sys.modules):
        from .. import worker

        worker.stop_all()
