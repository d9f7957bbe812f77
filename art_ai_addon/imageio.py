"""Image files in and out through OpenCV: PNG (8/16 bit), JPEG, TIFF, EXR, keeping alpha; atomic writes.

Files hold sRGB-encoded values except EXR, which holds scene-linear ones; data maps (normal, height,
masks) are written and read as they are (`data=True`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .core import as_image, linear_to_srgb, srgb_to_linear
from .errors import ArtAIError, InputError

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp", ".webp")


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from .errors import NotAvailableError

        raise NotAvailableError(
            "reading and writing image files needs OpenCV (`pip install opencv-python-headless`)"
        ) from exc
    return cv2


def check_input_file(path, what: str = "input") -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what}: {p} does not exist")
    if p.is_dir():
        raise InputError(f"{what}: {p} is a folder, expected an image file")
    return p


def read_image(path, *, data: bool = False, what: str = "image") -> np.ndarray:
    """Read an image file as float32 (H, W, C) in [0, 1], sRGB-encoded (EXR is converted unless `data`)."""
    cv2 = _cv2()
    p = check_input_file(path, what)
    buf = np.fromfile(str(p), dtype=np.uint8)
    if buf.size == 0:
        raise InputError(f"{what}: {p} is empty (0 bytes)")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise InputError(f"{what}: cannot read {p}: not an image, or a format OpenCV cannot decode")
    if img.ndim == 3:
        if img.shape[2] == 3:
            img = img[:, :, ::-1]
        elif img.shape[2] == 4:
            img = img[:, :, [2, 1, 0, 3]]
    is_float = np.issubdtype(img.dtype, np.floating)
    if is_float and p.suffix.lower() == ".exr" and not data:
        img = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        if img.ndim == 3 and img.shape[2] == 4:
            img = np.concatenate([linear_to_srgb(img[:, :, :3]), img[:, :, 3:]], axis=2)
        else:
            img = linear_to_srgb(img)
    elif img.dtype not in (np.uint8, np.uint16) and not is_float:
        img = img.astype(np.float32) / float(np.iinfo(img.dtype).max)
    return as_image(img, what)


def write_image(path, img, *, data: bool = False, bits: int | None = None) -> Path:
    """Write atomically (temporary name in the same folder, then rename); returns the path.

    PNG/TIFF are 8 bit unless `bits=16`; EXR is float (converted to linear unless `data`); JPEG drops alpha.
    """
    cv2 = _cv2()
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise InputError(f"output: {p} has no image extension; use one of {', '.join(IMAGE_EXTENSIONS)}")
    if p.is_dir():
        raise InputError(f"output: {p} is a folder, expected a file name")
    arr = as_image(img, "output image")
    if ext == ".exr":
        out = arr.astype(np.float32)
        if not data:
            if out.shape[2] == 4:
                out = np.concatenate([srgb_to_linear(out[:, :, :3]), out[:, :, 3:]], axis=2)
            elif out.shape[2] == 3:
                out = srgb_to_linear(out)
    else:
        if ext in (".jpg", ".jpeg") and arr.shape[2] == 4:
            arr = arr[:, :, :3]
        depth = bits or 8
        if depth == 16 and ext in (".png", ".tif", ".tiff"):
            out = np.round(arr * 65535.0).astype(np.uint16)
        else:
            out = np.round(arr * 255.0).astype(np.uint8)
    if out.shape[2] == 3:
        out = out[:, :, ::-1]
    elif out.shape[2] == 4:
        out = out[:, :, [2, 1, 0, 3]]
    elif out.shape[2] == 1:
        out = out[:, :, 0]
    ok, encoded = cv2.imencode(ext, np.ascontiguousarray(out))
    if not ok:
        raise ArtAIError(f"output: OpenCV could not encode {p.name} as {ext}")
    write_bytes_atomic(p, encoded.tobytes())
    return p


def write_bytes_atomic(path, payload: bytes) -> Path:
    """Write to a temporary file beside `path` and rename, so a crash never leaves half a file."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=str(parent))
    except OSError as exc:
        raise ArtAIError(f"output: cannot write into {parent}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, p)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ArtAIError(f"output: cannot write {p}: {exc.strerror or exc}") from exc
    return p


def list_images(folder) -> list[Path]:
    """Image files of a folder in name order (frames of a sequence)."""
    p = Path(folder)
    return sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
