"""Render passes from a Blender multilayer EXR: soft object / material mattes (Cryptomatte), depth, normal, motion.

`read_passes(path)` returns plain arrays, row 0 at the top:

- "depth" (H, W): the Depth pass (camera distance; the background is very far), "normal" (H, W, 3), "vector"
  (H, W, 4), "uv" (H, W, 2 or 3), "position" (H, W, 3), "object_index" / "material_index" (H, W), "combined"
  (H, W, 4, scene-linear, as stored);
- "object_id" / "material_id" (H, W) uint32: the Cryptomatte id of the object (material) that covers most of each
  pixel (0 where nothing does), for grouping pixels by object;
- "object:NAME", "material:NAME", "asset:NAME" (H, W) float coverage in [0, 1] from the Cryptomatte passes: the
  anti-aliased fraction of each pixel the object (material) covers, not a hard index map.

OpenImageIO reads the file (Blender bundles it; the `OpenImageIO` wheel elsewhere); where it is missing, the
engine's own scanline EXR reader does. No bpy here.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from .errors import InputError

_PLAIN = {"Depth": ("depth", "Z"), "Normal": ("normal", "XYZ"), "Vector": ("vector", "XYZW"), "UV": ("uv", "UVA"),
          "Position": ("position", "XYZ"), "IndexOB": ("object_index", "X"), "IndexMA": ("material_index", "X"),
          "Combined": ("combined", "RGBA")}
_CRYPTO_KINDS = {"CryptoObject": "object", "CryptoMaterial": "material", "CryptoAsset": "asset"}


def _read_oiio(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    import OpenImageIO as oiio  # noqa: N813 - the module's own name

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise InputError(f"passes: OpenImageIO cannot read {path}: {oiio.geterror()}")
    channels: dict[str, np.ndarray] = {}
    attrs: dict[str, str] = {}
    try:
        sub = 0
        while inp.seek_subimage(sub, 0):
            spec = inp.spec()
            pixels = inp.read_image(sub, 0, 0, spec.nchannels, oiio.FLOAT)
            if pixels is None:
                raise InputError(f"passes: OpenImageIO cannot read part {sub} of {path}: {inp.geterror()}")
            pixels = np.asarray(pixels, np.float32).reshape(spec.height, spec.width, spec.nchannels)
            for k, name in enumerate(spec.channelnames):
                channels[name] = pixels[:, :, k]
            for a in spec.extra_attribs:
                if a.name.startswith("cryptomatte/"):
                    attrs[a.name] = str(a.value)
            sub += 1
    finally:
        inp.close()
    return channels, attrs


def _read_own(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from .stylize.temporal import _exr_headers, read_exr_channels

    headers = _exr_headers(path.read_bytes())[0]
    attrs = {}
    for hdr in headers:
        for name, (typ, raw) in hdr.items():
            if name.startswith("cryptomatte/") and typ == "string":
                attrs[name] = raw.decode("utf-8", "replace")
    return read_exr_channels(path), attrs


def _have_oiio() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("OpenImageIO") is not None
    except (ImportError, ValueError):
        return False


def _split(name: str) -> tuple[str, str, str]:
    """'ViewLayer.Depth.Z' -> ('ViewLayer', 'Depth', 'Z'); 'Depth.Z' -> ('', 'Depth', 'Z')."""
    parts = name.split(".")
    if len(parts) >= 3:
        return ".".join(parts[:-2]), parts[-2], parts[-1]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return "", "", name


def mmh3_float(name: str) -> np.float32:
    """Cryptomatte's id of a name: MurmurHash3_32 (seed 0) of its UTF-8 bytes, as float32 bits (no NaN/inf/denormal)."""
    data = name.encode("utf-8")
    c1, c2, h = 0xCC9E2D51, 0x1B873593, 0
    n = len(data) // 4 * 4
    for i in range(0, n, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail = data[n:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    exp = (h >> 23) & 0xFF
    if exp in (0, 255):
        h ^= 1 << 23
    return np.frombuffer(struct.pack("<I", h), np.float32)[0]


def _manifests(attrs: dict[str, str], layer: str) -> dict[str, dict[str, np.float32]]:
    """{'CryptoObject': {name: id}, ...} from the cryptomatte/<key>/name and /manifest header attributes."""
    by_key: dict[str, dict[str, str]] = {}
    for full, value in attrs.items():
        parts = full.split("/")
        if len(parts) == 3:
            by_key.setdefault(parts[1], {})[parts[2]] = value
    out: dict[str, dict[str, np.float32]] = {}
    for entry in by_key.values():
        typename = entry.get("name", "")
        prefix, _, kind = typename.rpartition(".")
        if prefix != layer or kind not in _CRYPTO_KINDS:
            continue
        try:
            manifest = json.loads(entry.get("manifest") or "{}")
        except ValueError:
            manifest = {}
        ids = {}
        for name, hexid in manifest.items() if isinstance(manifest, dict) else ():
            try:
                ids[str(name)] = np.frombuffer(struct.pack("<I", int(str(hexid), 16)), np.float32)[0]
            except (ValueError, struct.error):
                ids[str(name)] = mmh3_float(str(name))
        out[kind] = ids
    return out


def crypto_coverage(ranks: list[np.ndarray], ids) -> np.ndarray:
    """Coverage (H, W) of the ids (one or several) from Cryptomatte rank images (H, W, 4): (id, cov, id, cov)."""
    want = np.atleast_1d(np.asarray(ids, np.float32)).view(np.uint32)
    cov = np.zeros(ranks[0].shape[:2], np.float32)
    for rank in ranks:
        for k in (0, 2):
            hit = np.isin(np.ascontiguousarray(rank[:, :, k]).view(np.uint32), want)
            cov += np.where(hit, rank[:, :, k + 1], 0.0).astype(np.float32)
    return np.clip(cov, 0.0, 1.0)


def read_passes(path, *, view_layer: str | None = None, masks=None) -> dict[str, np.ndarray]:
    """The passes of a multilayer EXR that Blender wrote (see the module docstring).

    `view_layer`: which view layer's passes (default: the first in the file). `masks`: the mattes to build, as
    "object:NAME" / "material:NAME" keys (default: every name in the Cryptomatte manifests).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"passes: {p} does not exist")
    try:
        channels, attrs = _read_oiio(p) if _have_oiio() else _read_own(p)
    except InputError:
        raise
    except (OSError, ValueError, struct.error, KeyError, IndexError) as exc:
        raise InputError(f"passes: {p.name} is not a readable OpenEXR file ({exc})") from None
    layers = list(dict.fromkeys(_split(n)[0] for n in channels))
    if not layers:
        raise InputError(f"passes: {p.name} holds no channels")
    layer = view_layer if view_layer is not None else layers[0]
    if layer not in layers:
        raise InputError(f"passes: {p.name} has no view layer {layer!r}; it has {', '.join(map(repr, layers))}")
    mine = {}
    for name, arr in channels.items():
        lay, pas, ch = _split(name)
        if lay == layer:
            mine.setdefault(pas, {})[ch] = arr
    out: dict[str, np.ndarray] = {}
    for pas, (key, order) in _PLAIN.items():
        chans = mine.get(pas)
        if not chans:
            continue
        present = [c for c in order if c in chans]
        if not present:
            continue
        arr = np.stack([chans[c] for c in present], axis=2)
        out[key] = arr[:, :, 0] if key in ("depth", "object_index", "material_index") else arr
    manifests = _manifests(attrs, layer)
    wanted = None if masks is None else set(masks)
    for kind, label in _CRYPTO_KINDS.items():
        ranks = []
        for k in range(64):
            chans = mine.get(f"{kind}{k:02d}")
            if not chans:
                break
            ranks.append(np.stack([chans.get(c, np.zeros_like(next(iter(chans.values())))) for c in "rgba"], axis=2))
        if not ranks:
            continue
        if label in ("object", "material"):
            top = np.ascontiguousarray(ranks[0][:, :, 0]).view(np.uint32).copy()
            top[ranks[0][:, :, 1] <= 0] = 0
            out[f"{label}_id"] = top
        names = manifests.get(kind, {})
        if wanted is not None:  # names asked for that the manifest does not list: by their hash
            for key in wanted:
                kk, _, nm = key.partition(":")
                if kk == label and nm not in names:
                    names[nm] = mmh3_float(nm)
        for name, ident in names.items():
            key = f"{label}:{name}"
            if wanted is None or key in wanted:
                out[key] = crypto_coverage(ranks, ident)
    return out
