"""The PyTorch environment in the preferences: found or not, device, torch version; create one (full build).

Nothing here imports torch or changes sys.path: the PyTorch Python is probed in its own process, once per
interpreter path, on a thread (never on the draw path), and the answer is cached.
"""

from __future__ import annotations

import threading

import bpy
from bpy.props import BoolProperty

from .. import deps
from .jobs import JobOperator
from .props import engine_settings, user_dir
from .runner import ENV_FOLDER

_probes: dict[str, dict] = {}  # interpreter path -> probe answer ({"pending": True} while it runs)
_lock = threading.Lock()


def _probe_async(python: str, force: bool = False) -> dict:
    with _lock:
        known = _probes.get(python)
        if known is not None and not force:
            return known
        _probes[python] = {"pending": True}

    def work():
        try:
            answer = deps.probe_python(python, timeout=60)
        except Exception as exc:  # noqa: BLE001 - any failure is shown as "not usable"
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        with _lock:
            _probes[python] = answer

    threading.Thread(target=work, name="art_ai:probe", daemon=True).start()
    return _probes[python]


def full_build() -> bool:
    """The full build carries the environment creator; the extensions-platform build does not."""
    return deps.can_create_env()


def draw_environment(layout, context) -> None:
    settings = engine_settings(context)
    python, source = settings["python"], settings["python_source"]
    col = layout.column(align=True)
    if not python:
        col.label(text="No PyTorch Python: colour transfer, and OpenCV methods where OpenCV is bundled, run here;",
                  icon="INFO")
        col.label(text="Gatys, fast style, AdaIN, neural/GAN textures, DIP and LaMa need a Python with PyTorch.")
    else:
        state = _probe_async(python)
        col.label(text=f"Using {python} ({source})", icon="FILE_SCRIPT")
        if state.get("pending"):
            col.label(text="Checking it...", icon="TIME")
        elif state.get("ok"):
            device = state.get("device_name") or state.get("device") or "cpu"
            col.label(text=f"PyTorch {state.get('torch')} on {device}", icon="CHECKMARK")
        else:
            col.label(text=f"Not usable: {str(state.get('error', 'no torch'))[:120]}", icon="ERROR")
        col.operator("art_ai.check_torch", icon="FILE_REFRESH")
    if full_build():
        row = col.row()
        row.enabled = bool(getattr(bpy.app, "online_access", False))
        row.operator("art_ai.create_torch_env", icon="IMPORT")
        if not row.enabled:
            col.label(text="Creating an environment downloads PyTorch: turn on Allow Online Access "
                           "(Preferences > System > Network)")
    else:
        col.label(text="To get PyTorch: make a Python 3.11 venv with torch and point PyTorch Python at it "
                       "(see Getting started)")


class ARTAI_OT_check_torch(bpy.types.Operator):
    """Check the PyTorch Python again (torch version, device)"""

    bl_idname = "art_ai.check_torch"
    bl_label = "Check PyTorch Python"
    bl_options = {"REGISTER", "INTERNAL"}

    def execute(self, context):
        python = engine_settings(context)["python"]
        if not python:
            self.report({"WARNING"}, "No PyTorch Python is set")
            return {"CANCELLED"}
        _probe_async(python, force=True)
        return {"FINISHED"}


class ARTAI_OT_create_torch_env(JobOperator, bpy.types.Operator):
    """Create a Python environment with PyTorch for this computer (downloads about 1-3 GB)"""

    bl_idname = "art_ai.create_torch_env"
    bl_label = "Create PyTorch Environment"
    bl_options = {"REGISTER", "INTERNAL"}
    job_label = "Create PyTorch environment"

    confirm: BoolProperty(name="I agree to download PyTorch", default=False, options={"SKIP_SAVE"})

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, context):
        self.layout.label(text="PyTorch (about 1-3 GB) will be downloaded from the PyTorch and PyPI servers")
        self.layout.prop(self, "confirm")

    def prepare(self, context):
        from ..errors import ArtAIError

        if not full_build():
            raise ArtAIError("this build of Art AI does not create environments; point PyTorch Python at one")
        if not getattr(bpy.app, "online_access", False):
            raise ArtAIError("creating a PyTorch environment downloads it: turn on Allow Online Access first")
        if not self.confirm:
            raise ArtAIError("confirm the download to create the environment")
        base = user_dir("")
        if not base:
            raise ArtAIError("the extension's user folder is not available")
        folder = f"{base}/{ENV_FOLDER}"

        def work(progress, cancel):
            from .. import torch_env  # the full build carries it (full_build() checked above)

            return torch_env.create_torch_env(folder, progress=progress, cancel=cancel)

        return work

    def finish(self, context, result) -> None:
        _probes.pop(str(result), None)
        self.report({"INFO"}, f"PyTorch environment ready: {result}")


classes = (ARTAI_OT_check_torch, ARTAI_OT_create_torch_env)
