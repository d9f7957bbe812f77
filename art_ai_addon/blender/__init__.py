"""Everything that touches bpy. `register()`/`unregister()` leave nothing behind (classes, handlers, the CLI
command, running jobs, the engine worker), and nothing optional is imported here."""

from __future__ import annotations

import bpy

from . import deps_ui, jobs, models_ui, operators, panels, preferences, props, render

_cli_handle = None
_handlers: list[tuple[list, object]] = []


def _classes():
    return (list(props.classes) + list(preferences.classes) + list(jobs.classes) + list(operators.classes)
            + list(panels.classes) + list(models_ui.classes) + list(deps_ui.classes))


@bpy.app.handlers.persistent
def _pack_results_on_save(*_args):
    from .bridge import pack_results

    pack_results()


def _cli(argv):
    from ..cli import main

    return main(argv, prog="blender --command art_ai")


def register():
    global _cli_handle
    for cls in _classes():
        bpy.utils.register_class(cls)
    bpy.types.Scene.art_ai = bpy.props.PointerProperty(type=props.ArtAISettings)  # type: ignore[attr-defined]
    bpy.app.handlers.save_pre.append(_pack_results_on_save)
    _handlers.append((bpy.app.handlers.save_pre, _pack_results_on_save))
    render.register_handlers()
    from .render_upscale import register_handlers as register_upscale_handlers

    register_upscale_handlers(_handlers)
    from .. import models

    models.set_preference_dir(props.engine_settings()["models_dir"])
    if hasattr(bpy.utils, "register_cli_command"):
        _cli_handle = bpy.utils.register_cli_command("art_ai", _cli)


def unregister():
    global _cli_handle
    from .runner import stop_workers

    from .bridge import release_buffers

    jobs.cancel_all()
    stop_workers()
    release_buffers()
    if _cli_handle is not None:
        bpy.utils.unregister_cli_command(_cli_handle)
        _cli_handle = None
    render.unregister_handlers()
    while _handlers:
        lst, fn = _handlers.pop()
        if fn in lst:
            lst.remove(fn)
    from .. import models

    models.set_preference_dir(None)
    del bpy.types.Scene.art_ai  # type: ignore[attr-defined]
    for cls in reversed(_classes()):
        if getattr(cls, "is_registered", False):
            bpy.utils.unregister_class(cls)
