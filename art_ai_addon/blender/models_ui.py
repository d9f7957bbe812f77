"""Preferences > Add-ons > Art AI: the Models section and its operators.

Downloads happen only when Blender's "Allow Online Access" is on; importing a file is the offline path. Long
work (download, import, verify) runs through the job runner, so the UI stays responsive and Esc cancels it.
"""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import StringProperty

from ..models import store_root, registry, store
from ..models.cli import short_licence
from .jobs import JobOperator

_last_verify: dict[str, str] = {}  # file name -> status of the last Verify, shown next to each model


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
        root = store_root()

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
        root = store_root()

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
        root = store_root()

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
            removed = store.remove_model(self.name, store_root())
        except ArtAIError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for p in removed:
            _last_verify.pop(p.name, None)
        self.report({"INFO"}, f"Removed {self.name}")
        return {"FINISHED"}


classes = (ARTAI_OT_model_download, ARTAI_OT_model_import, ARTAI_OT_model_verify, ARTAI_OT_model_remove)


# ---------------------------------------------------------------------------------------------
# Drawing (called from the preferences' draw())


def draw_models(layout, context) -> None:
    root = store_root()
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
