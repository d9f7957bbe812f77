"""Style layers on the Blender side: targets (object, collection, material, everything else) checked against the
scene, the passes they need turned on, and each layer's soft matte made from the render's Cryptomatte passes.

A layer is a plain dict here: {"target": TARGET, "style": path or image, "method": ..., "strength": ...}; TARGET is
an object name, "collection:NAME", "material:NAME" or "*" (everything no other layer covers). The `render` command,
batch render steps, the stylize-on-render handler and the operator all go through `check_targets`, `enable_passes`,
`read_render_passes` and `engine_layers`.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import bpy

from ..errors import ArtAIError, InputError

REST = "*"
_PASS_FLAGS = ("use_pass_cryptomatte_object", "use_pass_cryptomatte_material", "use_pass_z", "use_pass_normal")
KEYFRAME_FLAGS = ("use_pass_cryptomatte_object", "use_pass_uv", "use_pass_vector", "use_pass_z", "use_pass_normal")


def parse_target(target: str) -> tuple[str, str]:
    """("object" | "collection" | "material" | "rest", name)."""
    t = str(target or "").strip()
    if not t:
        raise InputError("layer: empty target; give an object name, collection:NAME, material:NAME or *")
    if t == REST:
        return "rest", ""
    kind, sep, name = t.partition(":")
    if sep and kind.lower() in ("collection", "material", "object"):
        if not name:
            raise InputError(f"layer: {t!r} names no {kind.lower()}")
        return kind.lower(), name
    return "object", t


def _listing(names, limit: int = 12) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return shown or "none"


def _renderable_objects(scene) -> dict:
    return {o.name: o for o in scene.objects if o.type not in ("CAMERA", "LIGHT", "LIGHT_PROBE", "SPEAKER")}


def check_targets(scene, layers) -> None:
    """Every layer's target exists in the scene; else one line naming what exists (before any rendering)."""
    objects = _renderable_objects(scene)
    collections = {c.name for c in bpy.data.collections}
    materials = {m.name for m in bpy.data.materials}
    rests = 0
    for i, layer in enumerate(layers):
        kind, name = parse_target(layer.get("target", ""))
        what = f"layer {i + 1} ({layer.get('target')})"
        if kind == "rest":
            rests += 1
        elif kind == "object" and name not in objects:
            raise InputError(f"{what}: no object {name!r} in scene {scene.name!r}. Objects: {_listing(objects)}; "
                             f"collections (collection:NAME): {_listing(collections)}; materials (material:NAME): "
                             f"{_listing(materials)}; or * for everything else")
        elif kind == "collection" and name not in collections:
            raise InputError(f"{what}: no collection {name!r}. Collections: {_listing(collections)}")
        elif kind == "material" and name not in materials:
            raise InputError(f"{what}: no material {name!r}. Materials: {_listing(materials)}")
    if rests > 1:
        raise InputError("layers: more than one layer targets * (everything else); keep one")


def mask_keys(scene, target: str) -> list[str] | None:
    """The read_passes keys whose coverages add up to the target's matte (None for everything else)."""
    kind, name = parse_target(target)
    if kind == "rest":
        return None
    if kind == "object":
        return [f"object:{name}"]
    if kind == "material":
        return [f"material:{name}"]
    coll = bpy.data.collections.get(name)
    objs: list[str] = [o.name for o in coll.all_objects] if coll is not None else []
    return [f"object:{n}" for n in objs]


def needs_passes(layers, keep_edges: float = 0.0, depth_scale: bool = False) -> bool:
    return bool(layers) and (any(parse_target(la.get("target", REST))[0] != "rest" for la in layers)
                             or keep_edges > 0 or depth_scale)


@contextmanager
def enable_passes(scene):
    """Cryptomatte object and material, Depth and Normal passes on every view layer for the block; the artist's own
    pass settings come back afterwards."""
    saved = []
    for vl in scene.view_layers:
        for flag in _PASS_FLAGS:
            if hasattr(vl, flag):
                saved.append((vl, flag, getattr(vl, flag)))
                setattr(vl, flag, True)
    try:
        yield
    finally:
        for vl, flag, value in saved:
            try:
                setattr(vl, flag, value)
            except (AttributeError, ReferenceError, TypeError):
                pass


def turn_on_passes(scene, extra: bool = False) -> list[str]:
    """Turn the passes on for good (the panel does this when a layer is added; `extra`: also UV and Vector, for
    keyframe propagation); returns what it changed."""
    changed = []
    for vl in scene.view_layers:
        for flag in dict.fromkeys(_PASS_FLAGS + (KEYFRAME_FLAGS if extra else ())):
            if hasattr(vl, flag) and not getattr(vl, flag):
                setattr(vl, flag, True)
                changed.append(f"{vl.name}.{flag}")
    return changed


def save_passes(scene, path: Path) -> Path:
    """The current Render Result, every pass, as a 32-bit multilayer EXR at `path` (temporary name, then rename)."""
    from .scene_io import image_format

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    rr = bpy.data.images.get("Render Result")
    if rr is None:
        raise InputError("no Render Result: render first (F12)")
    with image_format(scene.render.image_settings, "EXR"):
        rr.save_render(str(tmp), scene=scene)
    if not tmp.exists():
        raise ArtAIError(f"Blender did not write the passes file {tmp}")
    os.replace(tmp, path)
    return path


def read_render_passes(scene, layers) -> dict:
    """The passes that `layers` need from the current Render Result (through a temporary multilayer EXR, removed)."""
    from ..passes import read_passes

    keys = {k for la in layers for k in (mask_keys(scene, la.get("target", REST)) or [])}
    fd, tmp = tempfile.mkstemp(prefix="art_ai_passes_", suffix=".exr")
    os.close(fd)
    try:
        save_passes(scene, Path(tmp))
        return read_passes(tmp, masks=keys)
    finally:
        Path(tmp).unlink(missing_ok=True)


def engine_layers(scene, layers, passes: dict, shape) -> list[dict]:
    """The layers as `stylize_layers` takes them: each target's matte from the passes (missing passes: a clear
    error saying how to turn them on). Where targets overlap the more specific layer takes the pixels: an object's
    layer over its material's, a material's over its collection's, and those over everything else."""
    import numpy as np

    out: list[dict] = []
    for layer in sorted(layers, key=lambda la: -_SPECIFIC[parse_target(la.get("target", REST))[0]]):
        keys = mask_keys(scene, layer.get("target", REST))
        spec = {k: v for k, v in layer.items() if k != "target"}
        spec["name"] = layer.get("target", REST)
        if keys is None:
            spec["mask"] = None
        else:
            kind = parse_target(layer.get("target", REST))[0]
            kind = "material" if kind == "material" else "object"  # collections are their objects' mattes
            if not any(p.startswith(kind + ":") or p == f"{kind}_id" for p in passes):
                raise InputError(f"layer {layer.get('target')}: the render has no Cryptomatte pass to find it in; "
                                 "turn on View Layer Properties > Passes > Cryptomatte > Object and Material")
            cov = np.zeros(shape[:2], np.float32)
            for k in keys:
                if k in passes:
                    cov += passes[k]
            cov = np.clip(cov, 0.0, 1.0)
            taken = sum((o["mask"] for o in out if o["mask"] is not None), np.zeros_like(cov))
            spec["mask"] = np.clip(cov - taken, 0.0, 1.0)  # a more specific layer's pixels are its own
        out.append(spec)
    return out


_SPECIFIC = {"object": 3, "material": 2, "collection": 1, "rest": 0}


def scene_style_layers(scene, *, base: dict | None = None) -> list[dict]:
    """The scene's style layers (Render Properties > Art AI Stylize) with their style images read as arrays, ready
    for `engine_layers`. With no layers but keep edges or depth scale on, the panel's one style is the layer for
    everything else (`base`: its settings dict with "style" or "style_path", "method", "strength")."""
    from .bridge import find_image, image_to_array
    from .operators._common import load_file_array
    from .props import scene_layers

    layers = scene_layers(scene)
    if not layers and base is not None:
        s = getattr(scene, "art_ai", None)
        if s is not None and (s.keep_edges > 0 or s.depth_scale) and (base.get("style") is not None
                                                                       or base.get("style_path")):
            layers = [{"target": REST, "style": base.get("style") if base.get("style") is not None
                       else base["style_path"], "method": str(base.get("method", "auto")).lower(),
                       "strength": float(base.get("strength", 1.0))}]
    for i, la in enumerate(layers):
        if not la["target"]:
            raise InputError(f"style layer {i + 1}: choose its object, collection or material")
        if "style_image" in la:
            la["style"] = image_to_array(find_image(la.pop("style_image"), f"style layer {la['target']}"), scene)
        elif isinstance(la.get("style"), str):
            la["style"] = load_file_array(la["style"], f"style layer {la['target']}")
        elif la.get("style") is None:
            raise InputError(f"style layer {la['target']}: choose a style image or file")
    return layers
