"""Preferences > Add-ons > Art AI: the Models and Dependencies sections and their operators.

Downloads and network installs happen only when Blender's "Allow Online Access" is on; importing a file
and installing from a local wheel folder are the offline paths. Long work (download, import, verify,
pip) runs through the job runner, so the UI stays responsive and Esc cancels it.
"""

from __future__ import annotations

import time
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from .. import deps
from ..models import models_dir, registry, store
from ..models.cli import short_licence
from .jobs import JobOperator
from .props import ADDON_PACKAGE

_last_verify: dict[str, str] = {}  # file name -> status of the last Verify, shown next to each model
_status_cache: dict = {"time": 0.0, "value": None}
_accelerator: list = []


def _user_dir(sub: str) -> str | None:
    """A folder in this extension's user directory (None when not running as an installed extension)."""
    try:
        return bpy.utils.extension_path_user(ADDON_PACKAGE, path=sub, create=True)
    except (ValueError, RuntimeError, AttributeError):
        return None


def site_packages_dir() -> str | None:
    """Where PyTorch is installed on request; the lead's register() puts it on sys.path."""
    return _user_dir("site-packages")


def enable_site_packages() -> None:
    """Call from register(): make a previously installed PyTorch importable."""
    folder = site_packages_dir()
    if folder:
        deps.add_to_sys_path(folder)


def disable_site_packages() -> None:
    """Call from unregister(): take the folder off sys.path again."""
    folder = site_packages_dir()
    if folder:
        deps.remove_from_sys_path(folder)


# ---------------------------------------------------------------------------------------------
# Operators


class ARTAI_OT_model_download(JobOperator, bpy.types.Operator):
    """Download this model from its publisher (needs Allow Online Access); the checksum is checked first"""

    bl_idname = "art_ai.model_download"
    bl_label = "Download Model"
    bl_options = {"REGISTER", "INTERNAL"}
    job_label = "Download model"

    name: StringProperty(name="Model", description="Registry name of the model to download")

    def prepare(self, context):
        from ..errors import InputError
        from ..models.download import DownloadNotAllowed, download, not_allowed_message

        entry = registry.get(self.name)
        if entry is None:
            raise InputError(f"download: {self.name!r} is not a registry model")
        if not bpy.app.online_access:
            raise DownloadNotAllowed(not_allowed_message(entry))
        root = models_dir()

        def work(progress, cancel):
            return download(entry["name"], allow=True, models_dir_=root, progress=progress, cancel=cancel)

        return work

    def finish(self, context, result) -> None:
        self.report({"INFO"}, f"Installed {self.name} as {result}")


class ARTAI_OT_model_import(JobOperator, bpy.types.Operator):
    """Copy a weights file from disk into the model store (checksum and layout are checked first)"""

    bl_idname = "art_ai.model_import"
    bl_label = "Import Model File"
    bl_options = {"REGISTER", "INTERNAL"}
    job_label = "Import model"

    filepath: StringProperty(name="File", subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.pth;*.pt;*.ckpt", options={"HIDDEN"})
    name: StringProperty(name="Store As", description="Registry name (e.g. vgg19) or a name for your own model; "
                                                       "empty = recognise it from its file name or checksum")
    architecture: StringProperty(name="Architecture", description="Layout of your own model, when it cannot be "
                                                                  "recognised (e.g. transformer_net)")

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def prepare(self, context):
        from ..errors import InputError

        src = bpy.path.abspath(self.filepath) if self.filepath else ""
        if not src or not Path(src).is_file():
            raise InputError(f"import: choose a weights file ({self.filepath or 'nothing chosen'} is not a file)")
        name = self.name or None
        arch = self.architecture or None
        root = models_dir()

        def work(progress, cancel):
            from ..core import reporter

            return store.import_model(src, name, architecture=arch, models_dir_=root,
                                      progress=reporter(progress, cancel))

        return work

    def finish(self, context, result) -> None:
        path, notes = result
        _last_verify.pop(Path(path).name, None)
        self.report({"INFO"}, f"Imported {Path(path).name}. " + " ".join(notes))


class ARTAI_OT_model_verify(JobOperator, bpy.types.Operator):
    """Re-hash every file in the model store and report damaged ones (they are not used)"""

    bl_idname = "art_ai.model_verify"
    bl_label = "Verify Models"
    bl_options = {"REGISTER", "INTERNAL"}
    job_label = "Verify models"

    def prepare(self, context):
        root = models_dir()

        def work(progress, cancel):
            from ..core import reporter

            return store.verify_store(root, progress=reporter(progress, cancel))

        return work

    def finish(self, context, result) -> None:
        _last_verify.clear()
        _last_verify.update({r["file"]: r["status"] for r in result})
        bad = [r["file"] for r in result if r["status"] in ("corrupt", "missing")]
        if bad:
            self.report({"ERROR"}, f"Corrupt or missing (not used): {', '.join(bad)}; download or import them again")
        else:
            self.report({"INFO"}, f"{len(result)} model file(s) verified")


class ARTAI_OT_model_remove(bpy.types.Operator):
    """Delete this model's file from the model store"""

    bl_idname = "art_ai.model_remove"
    bl_label = "Remove Model"
    bl_options = {"REGISTER", "INTERNAL"}

    name: StringProperty(name="Model")

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        from ..errors import ArtAIError

        try:
            removed = store.remove_model(self.name, models_dir())
        except ArtAIError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for p in removed:
            _last_verify.pop(p.name, None)
        self.report({"INFO"}, f"Removed {self.name}")
        return {"FINISHED"}


class ARTAI_OT_install_dependencies(JobOperator, bpy.types.Operator):
    """Install PyTorch or OpenCV with Blender's own Python into this extension's user folder"""

    bl_idname = "art_ai.install_dependencies"
    bl_label = "Install Dependencies"
    bl_options = {"REGISTER", "INTERNAL"}
    job_label = "Install dependencies"

    package: EnumProperty(name="Package", items=[
        ("TORCH", "PyTorch", "The CNN/GAN methods (build chosen for this computer: CUDA, ROCm, Apple MPS or CPU)"),
        ("OPENCV", "OpenCV", "Inpainting and optical flow (normally bundled with the extension)"),
        ("ALL", "All Missing", "Everything that is not installed yet"),
    ], default="TORCH")
    wheels_dir: StringProperty(name="Wheels Folder", subtype="DIR_PATH",
                               description="Install offline from this folder of .whl files (empty = from the "
                                           "internet, needs Allow Online Access)")
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})
    offline: BoolProperty(name="Offline", description="Pick a folder of wheel files first", default=False,
                          options={"SKIP_SAVE"})

    def invoke(self, context, event):
        if self.offline and not self.wheels_dir:
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self.execute(context)

    def prepare(self, context):
        from ..errors import ArtAIError

        keys = {"TORCH": ["torch"], "OPENCV": ["opencv"], "ALL": deps.missing()}[self.package]
        if not keys:
            raise ArtAIError("install: nothing is missing")
        folder = self.wheels_dir or (self.directory if self.offline else "")
        wheels = bpy.path.abspath(folder) if folder else None
        if not wheels and not bpy.app.online_access:
            raise ArtAIError("install: downloading packages needs Preferences > System > Network > Allow Online "
                             "Access; or choose a folder of wheel files to install from offline")
        target = site_packages_dir()
        if target is None:
            raise ArtAIError("install: the extension's user folder is not available (is Art AI installed as an "
                             "extension?)")
        log = str(Path(target).parent / "install.log")
        self._log = log

        def work(progress, cancel):
            return deps.install(keys, target, wheels_dir=wheels, log_path=log, progress=progress, cancel=cancel)

        return work

    def finish(self, context, result) -> None:
        _status_cache["value"] = None
        self.report({"INFO"}, f"Installed into {result} (log: {self._log})")


classes = (ARTAI_OT_model_download, ARTAI_OT_model_import, ARTAI_OT_model_verify, ARTAI_OT_model_remove,
           ARTAI_OT_install_dependencies)


# ---------------------------------------------------------------------------------------------
# Drawing (called from the preferences' draw())


def draw_models(layout, context) -> None:
    root = models_dir()
    online = bool(getattr(bpy.app, "online_access", False))
    col = layout.column()
    col.label(text=f"Folder: {root}", icon="FILE_FOLDER")
    if not online:
        col.label(text="Downloads are off (Preferences > System > Network > Allow Online Access); "
                       "Import a file instead", icon="INFO")
    for r in store.list_models(root):
        box = layout.box()
        row = box.row()
        status = _last_verify.get(r["file"])
        icon = "ERROR" if status in ("corrupt", "missing") else ("CHECKMARK" if r["installed"] else "BLANK1")
        row.label(text=r["name"], icon=icon)
        row.label(text=r["task"])
        row.label(text=store.format_size(r["size"], r["size_exact"]))
        row.label(text=short_licence(r["licence"]))
        buttons = row.row(align=True)
        if r["installed"]:
            op = buttons.operator("art_ai.model_remove", text="", icon="TRASH")
            op.name = r["name"]
        else:
            if r["registry"]:
                sub = buttons.row(align=True)
                sub.enabled = online
                op = sub.operator("art_ai.model_download", text="", icon="IMPORT")
                op.name = r["name"]
            op = buttons.operator("art_ai.model_import", text="", icon="FILEBROWSER")
            op.name = r["name"] if r["registry"] else ""
        info = box.column(align=True)
        info.scale_y = 0.7
        if r["description"]:
            info.label(text=r["description"])
        if r["source"]:
            info.label(text=f"Source: {r['source']}")
        if status == "corrupt":
            info.label(text="Corrupt: not used. Download or import it again.", icon="ERROR")
        elif r["registry"] and r["unverified"] and not r["installed"]:
            info.label(text="No published checksum: its SHA-256 is recorded when it is added")
    row = layout.row(align=True)
    row.operator("art_ai.model_verify", icon="CHECKMARK")
    op = row.operator("art_ai.model_import", text="Import Own Model...", icon="FILEBROWSER")
    op.name = ""


def _status():
    now = time.monotonic()
    if _status_cache["value"] is None or now - _status_cache["time"] > 5.0:
        _status_cache["value"] = deps.status()
        _status_cache["time"] = now
    return _status_cache["value"]


def draw_dependencies(layout, context) -> None:
    info = _status()
    col = layout.column()
    for key, label in (("torch", "PyTorch"), ("opencv", "OpenCV"), ("numpy", "NumPy")):
        item = info.get(key, {})
        text = f"{label} {item['version'] or ''}".strip() if item.get("present") else f"{label}: not installed"
        col.label(text=text, icon="CHECKMARK" if item.get("present") else "ERROR")
    if not info["torch"]["present"]:
        col.label(text="Without PyTorch: colour transfer, patch textures, Telea/PatchMatch repair still work;")
        col.label(text="Gatys, fast style, AdaIN, neural/GAN textures, Deep Image Prior and LaMa need it.")
        if not _accelerator:
            _accelerator.append(deps.detect_accelerator())
        _index, build = deps.torch_index(_accelerator[0])
        col.label(text=f"Build for this computer: {build}", icon="INFO")
    online = bool(getattr(bpy.app, "online_access", False))
    row = col.row(align=True)
    if not info["torch"]["present"]:
        sub = row.row(align=True)
        sub.enabled = online
        op = sub.operator("art_ai.install_dependencies", text="Install PyTorch", icon="IMPORT")
        op.package = "TORCH"
    if not info["opencv"]["present"]:
        sub = row.row(align=True)
        sub.enabled = online
        op = sub.operator("art_ai.install_dependencies", text="Install OpenCV", icon="IMPORT")
        op.package = "OPENCV"
    op = row.operator("art_ai.install_dependencies", text="Install from Wheel Folder...", icon="FILE_FOLDER")
    op.package = "ALL" if deps.missing() else "TORCH"
    op.offline = True
    target = site_packages_dir()
    if target:
        col.label(text=f"Installs into: {target}")
        col.label(text=f"Log: {Path(target).parent / 'install.log'}")
