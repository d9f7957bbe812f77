"""Everything that touches bpy. `register()`/`unregister()` leave nothing behind."""

from __future__ import annotations

import bpy

from . import jobs, operators, panels, props

_cli_handle = None
_handlers: list[tuple[list, object]] = []


def _optional(name):
    """Modules that arrive with later issues (models UI, render handlers, materials)."""
    import importlib

    try:
        return importlib.import_module(f".{name}", __package__)
    except ImportError:
        return None


def _classes():
    out = list(props.classes) + list(jobs.classes) + list(operators.classes) + list(panels.classes)
    models_ui = _optional("models_ui")
    if models_ui is not None:
        out += list(getattr(models_ui, "classes", ()))
    return out


@bpy.app.handlers.persistent
def _pack_results_on_save(*_args):
    from .bridge import pack_results

    pack_results()


def _cli(argv):
    from ..cli import main

    return main(argv, prog="blender --command art_ai")


def register():
    global _cli_handle
    models_ui = _optional("models_ui")
    if models_ui is not None:
        models_ui.enable_site_packages()  # PyTorch installed by the Dependencies panel in an earlier session
    for cls in _classes():
        bpy.utils.register_class(cls)
    bpy.types.Scene.art_ai = bpy.props.PointerProperty(type=props.ArtAISettings)  # type: ignore[attr-defined]
    bpy.app.handlers.save_pre.append(_pack_results_on_save)
    _handlers.append((bpy.app.handlers.save_pre, _pack_results_on_save))
    render = _optional("render")
    if render is not None and hasattr(render, "register_handlers"):
        render.register_handlers()
    settings = props.engine_settings()
    from .. import models

    models.set_preference_dir(settings["models_dir"])
    if hasattr(bpy.utils, "register_cli_command"):
        _cli_handle = bpy.utils.register_cli_command("art_ai", _cli)


def unregister():
    global _cli_handle
    jobs.cancel_all()
    if _cli_handle is not None:
        bpy.utils.unregister_cli_command(_cli_handle)
        _cli_handle = None
    render = _optional("render")
    if render is not None and hasattr(render, "unregister_handlers"):
        render.unregister_handlers()
    while _handlers:
        lst, fn = _handlers.pop()
        if fn in lst:
            lst.remove(fn)
    from .. import models

    models.set_preference_dir(None)
    models_ui = _optional("models_ui")
    if models_ui is not None:
        models_ui.disable_site_packages()
    del bpy.types.Scene.art_ai  # type: ignore[attr-defined]
    for cls in reversed(_classes()):
        if getattr(cls, "is_registered", False):
            bpy.utils.unregister_class(cls)
