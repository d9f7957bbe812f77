"""What every image operator shares: the source image, the engine settings, the shared poll, the result image."""

from __future__ import annotations

import os

import bpy
import numpy as np

from ...errors import InputError
from ...imageio import check_image_file
from .. import bridge
from ..jobs import JobOperator
from ..props import call_config, engine_settings
from ..runner import EngineCall


def source_image(context, name: str, what: str = "image"):
    """The named image; with no name, the one shown in the Image Editor the operator runs from."""
    if not name:
        space = getattr(context, "space_data", None)
        image = getattr(space, "image", None) if space is not None and space.type == "IMAGE_EDITOR" else None
        if image is not None:
            return image
    return bridge.find_image(name, what)


def load_file_array(path: str, what: str) -> np.ndarray:
    """Read an image file through Blender itself (works without OpenCV), then drop the datablock."""
    full = bpy.path.abspath(path)
    if not os.path.isfile(full):
        if os.path.isdir(full):
            raise InputError(f"{what}: {full} is a folder; choose an image file in it")
        if os.path.exists(full):
            raise InputError(f"{what}: {full} is not a regular file (a pipe or device); choose an image file")
        raise InputError(f"{what}: {full} does not exist")
    check_image_file(full, what)  # size from the header: no decompression bomb reaches Blender's loader
    try:
        img = bpy.data.images.load(full, check_existing=False)
    except RuntimeError as exc:
        raise InputError(f"{what}: cannot read {full}: not an image Blender can open") from exc
    try:
        return bridge.image_to_array(img).copy()
    finally:
        bpy.data.images.remove(img)


def downscale(arr: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter downscale by an integer factor (for previews), no OpenCV needed."""
    h, w = (arr.shape[0] // factor) * factor, (arr.shape[1] // factor) * factor
    if h == 0 or w == 0:
        return arr
    a = np.asarray(arr[:h, :w], dtype=np.float32)
    return a.reshape(h // factor, factor, w // factor, factor, a.shape[2]).mean(axis=(1, 3))


class _ImageJob(JobOperator):
    """Shared bits: the source image, the engine settings, and where the result goes."""

    @classmethod
    def poll(cls, context):
        if not bpy.data.images:
            cls.poll_message_set("Open an image or render one (F12) first")
            return False
        return True

    def _begin(self, context, what="image"):
        self._src = source_image(context, self.image, what)  # type: ignore[attr-defined]
        self._src_name = self._src.name
        self._float = bool(self._src.is_float) and not bridge.is_render_result(self._src)
        self._settings = engine_settings(context)
        return bridge.image_to_array(self._src, context.scene)

    def _call(self, task: str, **kwargs) -> EngineCall:
        """The engine call this operator hands to the job runner (plain values only: it may run in the worker)."""
        self._engine = EngineCall(task, kwargs, method=kwargs.get("method"), config=call_config(self._settings))
        return self._engine

    def _output(self, context, arr, default_suffix, data=False, name=""):
        """The result image: `name`, else the operator's `output` (those that have one), else <source>.<suffix>."""
        name = name or getattr(self, "output", "") or f"{self._src_name}.{default_suffix}"
        src = bpy.data.images.get(self._src_name)
        bridge.check_writable_name(name, src)
        img = bridge.array_to_image(arr, name, data=data, float_buffer=self._float and not data, source=src)
        bridge.show_in_editor(context, img)
        return img
