"""ARTAI_OT_propagate: Render the frame range with the passes it needs and carry the painted keyframes to every
frame (raw/, passes/ and stylized/ in the output folder); resumable, Esc cancels between frames."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from bpy.props import BoolProperty, IntProperty, StringProperty

from ...errors import ArtAIError, InputError


class ARTAI_OT_propagate(bpy.types.Operator):
    """Render the frame range with the UV, object and motion passes (on for this job only) and carry the painted
    keyframes to every frame; finished frames are kept, so a cancelled run resumes where it stopped"""

    bl_idname = "art_ai.propagate"
    bl_label = "Propagate"
    bl_options = {"REGISTER"}

    frame_start: IntProperty(name="Start", default=0, description="First frame (0 = the scene's)")
    frame_end: IntProperty(name="End", default=0, description="Last frame (0 = the scene's)")
    output_dir: StringProperty(name="Output Folder", subtype="DIR_PATH",
                               description="Where raw/, passes/ and stylized/ go (empty: the panel's folder)")
    force: BoolProperty(name="Redo All", default=False, description="Render and propagate frames already done")

    _timer = None

    @classmethod
    def poll(cls, context):
        if not context.scene.art_ai.keyframes:
            cls.poll_message_set("Add a painted keyframe first (Paint This Frame)")
            return False
        return True

    # -- setting up and tearing down

    def _setup(self, context) -> None:
        from ..render import KeyframeStylizer, _Shot, _Styling
        from ..style_layers import KEYFRAME_FLAGS
        from .. import bridge
        from ._common import load_file_array

        scene = context.scene
        self._scene = scene
        a = self.frame_start or scene.frame_start
        b = self.frame_end or scene.frame_end
        if b < a:
            raise InputError(f"frames {a}-{b}: the end comes before the start")
        frames = list(range(a, b + 1, max(1, scene.frame_step)))
        painted, sizes = {}, {}
        for k in scene.art_ai.keyframes:
            if k.image is not None:
                painted[k.frame] = bridge.image_to_array(k.image, scene).copy()
            elif k.path:
                painted[k.frame] = load_file_array(k.path, f"keyframe {k.frame}")
            else:
                raise InputError(f"keyframe {k.frame}: choose its painted image or file")
            sizes[k.frame] = painted[k.frame].shape[:2]
        w = scene.render.resolution_x * scene.render.resolution_percentage // 100
        h = scene.render.resolution_y * scene.render.resolution_percentage // 100
        for f, size in sizes.items():
            if f not in frames:
                raise InputError(f"keyframe {f}: outside the frames {frames[0]}..{frames[-1]}")
            if tuple(size) != (h, w):
                raise InputError(f"keyframe {f}: the painted image is {size[1]}x{size[0]}, the render is {w}x{h}; "
                                 "paint over the rendered frame at its own size")
        folder = bpy.path.abspath(self.output_dir or scene.art_ai.keyframes_dir or "//art_ai_keyframes/")
        if not folder or folder.startswith("//"):
            raise InputError("output folder: save the .blend first, or choose an absolute folder")
        self._saved = [(vl, f, getattr(vl, f)) for vl in scene.view_layers for f in KEYFRAME_FLAGS if hasattr(vl, f)]
        for vl, f, _ in self._saved:
            setattr(vl, f, True)  # for this job only: put back in _teardown
        self._frame = scene.frame_current
        self._shot = _Shot(scene, Path(folder), False, None)
        self._shot.use_passes = True
        self._styling = _Styling(self._shot, KeyframeStylizer(painted), frames, False, None)
        keys = sorted(painted)
        self._todo = keys + [f for f in frames if f not in painted]  # keyframes first: every frame needs them
        # frames propagated from other paint are redone: the keyframes' fingerprint is kept beside them
        import hashlib

        digest = hashlib.sha256()
        for f in keys:
            digest.update(str(f).encode())
            digest.update(np.ascontiguousarray(painted[f], np.float32).tobytes())
        self._digest = digest.hexdigest()
        self._stamp = self._shot.sty_dir / ".keyframes.sha256"
        old = self._stamp.read_text().strip() if self._stamp.is_file() else None
        self._restyle = self.force or old != self._digest
        self._done = 0
        self._written = 0

    def _teardown(self) -> None:
        for vl, f, value in getattr(self, "_saved", []):
            try:
                setattr(vl, f, value)
            except (AttributeError, ReferenceError):
                pass
        scene = getattr(self, "_scene", None)
        if scene is not None:
            scene.frame_set(self._frame)

    def _step(self) -> None:
        from ...core import reporter

        frame = self._todo[self._done]
        shot = self._shot
        if self.force or not shot.raw(frame).exists() or not shot.passes(frame).exists():
            shot.render(frame)
            self._written += 1
        if self._restyle or not shot.stylized(frame).exists():
            self._styling(frame, reporter(None))
            self._written += 1
        self._done += 1
        if self._done == len(self._todo):
            from ...imageio import write_bytes_atomic

            write_bytes_atomic(self._stamp, (self._digest + "\n").encode())

    # -- entry points

    def execute(self, context):
        try:
            self._setup(context)
        except ArtAIError as exc:
            self._teardown()
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not bpy.app.background and context.window_manager is not None and context.window_manager.windows:
            wm = context.window_manager
            self._timer = wm.event_timer_add(0.05, window=context.window)
            wm.modal_handler_add(self)
            wm.progress_begin(0, len(self._todo))
            return {"RUNNING_MODAL"}
        try:
            while self._done < len(self._todo):
                self._step()
        except ArtAIError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        finally:
            self._teardown()
        self.report({"INFO"}, f"Propagated {len(self._todo)} frames into {self._shot.sty_dir}")
        return {"FINISHED"}

    def modal(self, context, event):
        wm = context.window_manager
        if event.type == "ESC":
            return self._end(context, f"Cancelled after {self._done} of {len(self._todo)} frames; finished frames "
                                      "are kept (Propagate again resumes)", {"CANCELLED"})
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            self._step()
        except ArtAIError as exc:
            return self._end(context, str(exc), {"CANCELLED"}, error=True)
        wm.progress_update(self._done)
        if self._done >= len(self._todo):
            return self._end(context, f"Propagated {len(self._todo)} frames into {self._shot.sty_dir}", {"FINISHED"})
        return {"RUNNING_MODAL"}

    def _end(self, context, message, result, error=False):
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        self._teardown()
        self.report({"ERROR" if error else "INFO"}, message)
        return result
