"""Image files in and out through OpenCV: PNG (8/16 bit), JPEG, TIFF, EXR, keeping alpha; atomic writes.

Files hold sRGB-encoded values except EXR, which holds scene-linear ones; data maps (normal, height,
masks) are written and read as they are (`data=True`).
"""

from __future__ import annotations

import os
import stat
import struct
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .core import as_image, linear_to_srgb, srgb_to_linear
from .core import human_bytes as _human_bytes
from .errors import ArtAIError, InputError

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp", ".webp")



def as_path(path, what: str = "input") -> Path:
    """A str / bytes / os.PathLike as a Path; None or another type is an InputError."""
    if path is None:
        raise InputError(f"{what}: no file given")
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"{what}: expected a file path (a string or Path), got {type(path).__name__}")
    if not str(path):
        raise InputError(f"{what}: the file name is empty")
    p = Path(path).expanduser()
    problem = name_length_problem(p)
    if problem:
        raise InputError(f"{what}: {problem}")
    return p


def name_length_problem(p: Path) -> str | None:
    """What is wrong when a part of the path is longer than its file system takes (a longer one made exists() and
    open() raise OSError 36, an internal error; for an output, after all the work), else None. Names up to 143
    bytes (the smallest limit in common use, eCryptfs) cost no system call."""
    longest = max((len(os.fsencode(part)) for part in p.parts), default=0)
    if longest <= 143:
        return None
    limit = 255
    for q in (p.parent, *p.parent.parents):
        try:
            limit = int(os.pathconf(q if str(q) else ".", "PC_NAME_MAX"))
            break
        except (OSError, ValueError, AttributeError):
            continue
    for part in p.parts:
        size = len(os.fsencode(part))
        if size > limit:
            shown = part if len(part) <= 40 else part[:20] + "..." + part[-12:]
            return (f"the name {shown} is too long ({size} bytes; the file system takes at most {limit}); use a "
                    "shorter name")
    return None


def check_input_file(path, what: str = "input") -> Path:
    """An existing, readable regular file (a FIFO, device or folder would hang or fail later)."""
    p = as_path(path, what)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"{what}: {p} does not exist") from None
    except OSError as exc:
        raise InputError(f"{what}: cannot open {p}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what}: {p} is a folder, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what}: {p} is not a regular file (a pipe, socket or device); give a file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{what}: {p} cannot be read (permission denied)")
    return p


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from .errors import NotAvailableError

        raise NotAvailableError(
            "reading and writing image files needs OpenCV (`pip install opencv-python-headless`)"
        ) from exc
    return cv2


def image_or_path(value, what: str = "image") -> np.ndarray:
    """An engine image from an array, or from a file when given a path (errors name `what`)."""
    if isinstance(value, (str, bytes, os.PathLike)):
        return read_image(value, what=what)
    return as_image(value, what)


def read_image(path, *, data: bool = False, what: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as float32 (H, W, C) in [0, 1], sRGB-encoded (EXR is converted unless `data`).

    The header is read first: a file that would decode to more than `max_pixels` (default: `get_max_pixels()`)
    is refused before any pixel is decoded. EXIF orientation (JPEG, PNG, TIFF, WebP) is applied.
    """
    cv2 = _cv2()
    p = check_input_file(path, what)
    header = check_image_file(p, what, max_pixels=max_pixels)
    buf = np.fromfile(str(p), dtype=np.uint8)
    if buf.size == 0:
        raise InputError(f"{what}: {p} is empty (0 bytes)")
    with quiet_stderr() as said:
        try:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        except cv2.error:
            img = None
    del buf
    if img is None or img.size == 0:
        exc = InputError(f"{what}: cannot read {p}: not an image, a damaged file, or a format OpenCV cannot decode")
        if said.text:
            exc.add_note(f"the decoder said: {said.text.strip()}")
        raise exc
    if header is not None and header.orientation != 1:
        img = apply_orientation(img, header.orientation)
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
    p = as_path(path, "output")
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
        # the name shortened: a name near the file system's limit must not fail for its temporary's sake
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:100]}.", suffix=".tmp", dir=str(parent))
    except OSError as exc:
        raise ArtAIError(f"output: cannot write into {parent}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            # mkstemp makes 0600 files: give the result the mode a plain open() would (umask applied), or keep
            # the mode of the file it replaces
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), _final_mode(p))
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


def _umask() -> int:
    try:  # Linux says it without changing it (os.umask would, for a moment, for every thread)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        old = os.umask(0o022)
        os.umask(old)
    return old


_UMASK_LOCK = threading.Lock()


def _final_mode(p: Path) -> int:
    try:
        return p.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


# ---------------------------------------------------------------------------------------------
# Library chatter: libpng, libjpeg, OpenEXR and OpenCV print their own lines on fd 2 while decoding; they
# are kept (`add_note` on a decoding error, shown by --debug) instead of landing before our one-line error.

_STDERR_LOCK = threading.Lock()


class _Said:
    text = ""


@contextmanager
def quiet_stderr():
    """Collect what C libraries write on file descriptor 2 inside the block (`.text`); with ART_AI_DEBUG set
    or when another thread is already collecting, nothing is redirected."""
    said = _Said()
    if os.environ.get("ART_AI_DEBUG") or not _STDERR_LOCK.acquire(blocking=False):
        yield said
        return
    try:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield said
            return
        sink = tempfile.TemporaryFile()
        try:
            os.dup2(sink.fileno(), 2)
            try:
                yield said
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                said.text = sink.read(8192).decode("utf-8", "replace")
        finally:
            sink.close()
    finally:
        _STDERR_LOCK.release()


# ---------------------------------------------------------------------------------------------
# Headers: size, channels and depth read from the first bytes, so a 1 MB file that decodes to 20000x20000
# is refused before it is decoded. Pure Python; formats it does not know are left to OpenCV's own limits.

_DEFAULT_BUDGET_BYTES = 4096 * 1024 * 1024  # the add-on's default memory budget
_FLOAT_RGBA = 16  # bytes per pixel of one decoded image in the engine (float32, up to 4 channels)
_max_pixels: int | None = None


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int
    channels: int = 3
    bytes_per_channel: int = 1
    orientation: int = 1  # EXIF orientation 1..8 (1 = as stored)

    @property
    def pixels(self) -> int:
        return self.width * self.height


def default_max_pixels() -> int:
    """One float RGBA copy of the image within the default memory budget (4 GB: 16384x16384), and at most
    1/64 of the physical memory (the work on an image needs several copies)."""
    limit = _DEFAULT_BUDGET_BYTES // _FLOAT_RGBA
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if ram > 0:
            limit = min(limit, ram // 64)
    except (AttributeError, ValueError, OSError):
        pass
    return int(limit)


def set_max_pixels(n: int | None) -> None:
    """The largest image (width x height) any reader accepts; None or 0 restores the default
    (`--max-pixels` on the CLI, the add-on preference in Blender)."""
    from .methods import check_number

    global _max_pixels
    _max_pixels = None if n is None else check_number(n, "max pixels", 0, whole=True,
                                                        hint="e.g. 100000000; 0 = the default") or None


def get_max_pixels() -> int:
    return _max_pixels if _max_pixels is not None else default_max_pixels()


def check_image_file(path, what: str = "image", *, max_pixels: int | None = None) -> ImageHeader | None:
    """A regular, readable image file whose decoded size fits the limit; raises InputError otherwise.

    Returns its header (None for a format whose header this module does not read). The Blender layer calls
    it before `bpy.data.images.load`, which has no limit of its own.
    """
    p = check_input_file(path, what)
    try:
        header = read_header(p)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None
    if header is None:
        return None
    limit = get_max_pixels() if max_pixels is None else int(max_pixels)
    if header.width < 1 or header.height < 1:
        raise InputError(f"{what}: {p} says it is {header.width}x{header.height} pixels; the file is damaged")
    if header.pixels > limit:
        need = _human_bytes(float(header.pixels) * _FLOAT_RGBA)
        raise InputError(
            f"{what}: {p.name} is {header.width}x{header.height} pixels ({header.pixels / 1e6:.0f} megapixels; "
            f"one float copy alone is {need}), more than the limit of {limit / 1e6:.0f} megapixels; scale it "
            "down, or raise the limit (--max-pixels N, or the add-on preference Max Image Pixels)")
    return header


def read_header(path) -> ImageHeader | None:
    """Size, channels, bytes per channel and EXIF orientation from the file's header, or None if unknown."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            for magic, reader in _READERS:
                if head.startswith(magic):
                    try:
                        return reader(fh, head)
                    except (struct.error, ValueError, IndexError, OverflowError):
                        raise InputError(f"{Path(path).name}: the {reader.__name__[6:].upper()} header is "
                                         "damaged; cannot read this file") from None
    except OSError as exc:
        raise InputError(f"{Path(path).name}: cannot read: {exc.strerror or exc}") from None
    return None


def _at(fh, offset: int, n: int) -> bytes:
    fh.seek(offset)
    data = fh.read(n)
    if len(data) < n:
        raise ValueError("truncated")
    return data


def _read_png(fh, head) -> ImageHeader:
    w, h, depth, ctype = struct.unpack(">IIBB", head[16:26])
    if head[12:16] != b"IHDR":
        raise ValueError("no IHDR")
    channels = {0: 1, 2: 3, 3: 4, 4: 4, 6: 4}.get(ctype, 4)
    orientation = 1
    pos = 8
    for _ in range(10000):  # eXIf comes before the image data
        length, kind = struct.unpack(">I4s", _at(fh, pos, 8))
        if kind in (b"IDAT", b"IEND"):
            break
        if kind == b"eXIf" and length < 1 << 20:
            orientation = _tiff_orientation(_at(fh, pos + 8, length))
            break
        pos += 12 + length
    return ImageHeader("png", w, h, channels, 2 if depth == 16 else 1, orientation)


def _read_jpeg(fh, head) -> ImageHeader:
    pos = 2
    orientation = 1
    for _ in range(100000):
        marker = _at(fh, pos, 2)
        if marker[0] != 0xFF:
            raise ValueError("not a marker")
        kind = marker[1]
        if kind == 0xFF:  # fill byte
            pos += 1
            continue
        if kind in (0x01, 0xD8) or 0xD0 <= kind <= 0xD7:
            pos += 2
            continue
        if kind in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            raise ValueError("no frame header")
        (length,) = struct.unpack(">H", _at(fh, pos + 2, 2))
        if kind == 0xE1 and length > 14:
            seg = _at(fh, pos + 4, length - 2)
            if seg.startswith(b"Exif\0\0"):
                orientation = _tiff_orientation(seg[6:])
        if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
            precision, h, w, comps = struct.unpack(">BHHB", _at(fh, pos + 4, 6))
            return ImageHeader("jpeg", w, h, 1 if comps == 1 else 3, 2 if precision > 8 else 1, orientation)
        pos += 2 + length
    raise ValueError("no frame header")


_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}


def _tiff_ifd(read, big: bool, end: str, offset: int) -> dict:
    """{tag: first value} of the IFD at `offset`; `read(offset, n)` gives bytes of the TIFF structure."""
    count_fmt, entry_size, off_fmt = ("Q", 20, "Q") if big else ("H", 12, "I")
    (n,) = struct.unpack(end + count_fmt, read(offset, 8 if big else 2))
    out = {}
    start = offset + (8 if big else 2)
    for i in range(min(n, 4096)):
        entry = read(start + i * entry_size, entry_size)
        tag, typ = struct.unpack(end + "HH", entry[:4])
        (count,) = struct.unpack(end + ("Q" if big else "I"), entry[4:12] if big else entry[4:8])
        value = entry[12:20] if big else entry[8:12]
        size = _TIFF_SIZES.get(typ, 1) * count
        if size > len(value):
            (ptr,) = struct.unpack(end + off_fmt, value)
            value = read(ptr, min(_TIFF_SIZES.get(typ, 1), 8))
        if typ == 3:
            out[tag] = struct.unpack(end + "H", value[:2])[0]
        elif typ in (4, 13):
            out[tag] = struct.unpack(end + "I", value[:4])[0]
        elif typ == 16:
            out[tag] = struct.unpack(end + "Q", value[:8])[0]
        elif typ == 1:
            out[tag] = value[0]
    return out


def _tiff_header(read) -> tuple[dict, bool, str]:
    order = read(0, 4)
    end = "<" if order[:2] == b"II" else ">"
    big = struct.unpack(end + "H", order[2:4])[0] == 43
    offset = struct.unpack(end + "Q", read(8, 8))[0] if big else struct.unpack(end + "I", read(4, 4))[0]
    return _tiff_ifd(read, big, end, offset), big, end


def _tiff_orientation(exif: bytes) -> int:
    """Orientation tag (274) of an EXIF block (a TIFF structure in memory); 1 if absent or odd."""
    def read(offset, n):
        if offset + n > len(exif):
            raise ValueError("truncated")
        return exif[offset:offset + n]

    try:
        tags, _, _ = _tiff_header(read)
    except (struct.error, ValueError):
        return 1
    value = tags.get(274, 1)
    return value if 1 <= value <= 8 else 1


def _read_tiff(fh, head) -> ImageHeader:
    tags, _, _ = _tiff_header(lambda offset, n: _at(fh, offset, n))
    bits = tags.get(258, 1)
    # orientation stays 1: OpenCV's TIFF decoder turns the pixels upright itself
    return ImageHeader("tiff", tags[256], tags[257], max(1, min(tags.get(277, 1), 4)), max(1, (bits + 7) // 8))


def _read_exr(fh, head) -> ImageHeader:
    pos = 8
    window = None
    channels = 0
    bytes_per = 2
    for _ in range(1000):
        chunk = _at(fh, pos, 0) + fh.read(1024)
        name_end = chunk.find(b"\0")
        if name_end == 0:
            break
        type_end = chunk.find(b"\0", name_end + 1)
        if name_end < 0 or type_end < 0 or type_end + 5 > len(chunk):
            raise ValueError("attribute too long")
        name = chunk[:name_end]
        (size,) = struct.unpack("<i", chunk[type_end + 1:type_end + 5])
        value_at = pos + type_end + 5
        if name == b"dataWindow":
            window = struct.unpack("<iiii", _at(fh, value_at, 16))
        elif name == b"channels":
            value = _at(fh, value_at, size)
            i = 0
            while i < len(value) and value[i] != 0:
                j = value.index(b"\0", i)
                (ptype,) = struct.unpack("<i", value[j + 1:j + 5])
                bytes_per = max(bytes_per, 2 if ptype == 1 else 4)
                channels += 1
                i = j + 17
        pos = value_at + size
    if window is None:
        raise ValueError("no dataWindow")
    x0, y0, x1, y1 = window
    return ImageHeader("exr", x1 - x0 + 1, y1 - y0 + 1, max(1, min(channels, 4)), 4)


def _read_bmp(fh, head) -> ImageHeader:
    (dib,) = struct.unpack("<I", head[14:18])
    if dib == 12:
        w, h, _, bpp = struct.unpack("<HHHH", head[18:26])
    else:
        w, h, _, bpp = struct.unpack("<iiHH", head[18:30])
    return ImageHeader("bmp", abs(w), abs(h), 4 if bpp == 32 else 3, 1)


def _read_webp(fh, head) -> ImageHeader:
    if head[8:12] != b"WEBP":
        raise ValueError("not WebP")
    kind = head[12:16]
    if kind == b"VP8X":
        flags = head[20]
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        orientation = 1
        if flags & 0x08:  # an EXIF chunk follows somewhere
            pos = 12
            for _ in range(1000):
                ck, size = struct.unpack("<4sI", _at(fh, pos, 8))
                if ck == b"EXIF" and size < 1 << 20:
                    data = _at(fh, pos + 8, size)
                    orientation = _tiff_orientation(data[6:] if data.startswith(b"Exif\0\0") else data)
                    break
                pos += 8 + size + (size & 1)
        return ImageHeader("webp", w, h, 4 if flags & 0x10 else 3, 1, orientation)
    if kind == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4, 1)
    if kind == b"VP8 ":
        if head[23:26] != b"\x9d\x01\x2a":
            raise ValueError("no VP8 start code")
        w, h = struct.unpack("<HH", head[26:30])
        return ImageHeader("webp", w & 0x3FFF, h & 0x3FFF, 3, 1)
    raise ValueError("unknown WebP chunk")


def _read_pnm(fh, head) -> ImageHeader:
    data = _at(fh, 0, 0) + fh.read(4096)
    fields: list[bytes] = []
    for line in data[2:].split(b"\n"):
        line = line.split(b"#", 1)[0]
        fields += line.split()
        if len(fields) >= 2:
            break
    w, h = int(fields[0]), int(fields[1])
    kind = head[1:2]
    channels = 3 if kind in (b"3", b"6", b"F") else 1
    return ImageHeader("pnm", w, h, channels, 4 if kind in (b"F", b"f") else 2)


def _read_hdr(fh, head) -> ImageHeader:
    data = _at(fh, 0, 0) + fh.read(8192)
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip() and i + 1 < len(lines):
            parts = lines[i + 1].split()
            dims = {parts[k][1:2]: int(parts[k + 1]) for k in (0, 2)}
            return ImageHeader("hdr", dims[b"X"], dims[b"Y"], 3, 4)
    raise ValueError("no resolution line")


def _read_sunras(fh, head) -> ImageHeader:
    w, h, depth = struct.unpack(">III", head[4:16])
    return ImageHeader("sun raster", w, h, 4 if depth == 32 else 3, 1)


def _read_jp2(fh, head) -> ImageHeader:
    data = _at(fh, 0, 0) + fh.read(4096)
    i = data.find(b"ihdr")
    if i < 0:
        raise ValueError("no ihdr box")
    h, w, nc = struct.unpack(">IIH", data[i + 4:i + 14])
    return ImageHeader("jpeg 2000", w, h, max(1, min(nc, 4)), 2)


def _read_j2k(fh, head) -> ImageHeader:
    x1, y1, x0, y0 = struct.unpack(">IIII", head[8:24])
    (nc,) = struct.unpack(">H", head[40:42])
    return ImageHeader("jpeg 2000", x1 - x0, y1 - y0, max(1, min(nc, 4)), 2)


def _read_gif(fh, head) -> ImageHeader:
    w, h = struct.unpack("<HH", head[6:10])
    return ImageHeader("gif", w, h, 4, 1)


_READERS = (
    (b"\x89PNG\r\n\x1a\n", _read_png),
    (b"\xff\xd8", _read_jpeg),
    (b"II*\0", _read_tiff), (b"MM\0*", _read_tiff), (b"II+\0", _read_tiff), (b"MM\0+", _read_tiff),
    (b"\x76\x2f\x31\x01", _read_exr),
    (b"BM", _read_bmp),
    (b"RIFF", _read_webp),
    (b"P1", _read_pnm), (b"P2", _read_pnm), (b"P3", _read_pnm), (b"P4", _read_pnm), (b"P5", _read_pnm),
    (b"P6", _read_pnm), (b"PF", _read_pnm), (b"Pf", _read_pnm),
    (b"#?RADIANCE", _read_hdr), (b"#?RGBE", _read_hdr),
    (b"\x59\xa6\x6a\x95", _read_sunras),
    (b"\x00\x00\x00\x0cjP  ", _read_jp2),
    (b"\xff\x4f\xff\x51", _read_j2k),
    (b"GIF87a", _read_gif), (b"GIF89a", _read_gif),
)


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright for EXIF orientation 1..8 (as a viewer shows them)."""
    t = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: a.swapaxes(0, 1)[::-1],
    }.get(int(orientation))
    return np.ascontiguousarray(t(img)) if t else img
