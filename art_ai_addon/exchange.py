"""Values between Blender's process and the engine worker: JSON, with arrays in shared-memory files kept mapped.

A fresh 100 MB file costs about ten copies of its bytes in page faults (the kernel zeroes every page), and a fresh
mapping of an existing one two. So each side keeps its files and their mappings for the session: a frame's pixels
cost one copy into a file on the way out and none on the way in (the reader gets a view of the mapping). A file is
reused once nothing holds a view of it and the other side has said it is done with it (`release`); files beyond
`KEEP_BYTES` that are free are removed. bench/bridge.py measures the round trip.
"""

from __future__ import annotations

import math
import mmap
import os
import sys
import uuid
from pathlib import Path

import numpy as np

KEEP_BYTES = 1 << 30  # free files kept for reuse beyond this are removed (a 4K RGBA float frame is 133 MB)
_MAPPED = 2  # sys.getrefcount of a mapping nobody else holds: our table and the call's argument


class SharedFiles:
    """This side's files (named `prefix`-*) and every file it has mapped, in `folder`."""

    def __init__(self, folder: Path, prefix: str, keep_bytes: int = KEEP_BYTES):
        self.folder, self.prefix, self.keep_bytes = Path(folder), prefix, keep_bytes
        self._maps: dict[str, tuple[mmap.mmap, int]] = {}  # path -> (mapping, its address)
        self._own: dict[str, int] = {}  # own files -> size, least recently used first
        self._lent: set[str] = set()  # own files the other side may still be reading
        self._held: set[str] = set()  # the other side's files we were given and have not released yet
        self._gone: list[str] = []  # own files removed, not yet announced

    # -- mappings

    def _map(self, path: str, nbytes: int) -> tuple[mmap.mmap, int]:
        entry = self._maps.get(path)
        if entry is None or len(entry[0]) < nbytes:
            if entry is not None:
                self._close(path)
            with open(path, "r+b") as f:
                mm = mmap.mmap(f.fileno(), 0)
            probe = np.frombuffer(mm, np.uint8, count=1)
            entry = (mm, probe.ctypes.data)
            del probe
            self._maps[path] = entry
        return entry

    def _close(self, path: str) -> None:
        entry = self._maps.pop(path, None)
        if entry is not None:
            try:
                entry[0].close()
            except BufferError:  # someone still holds a view: the mapping goes when they drop it
                pass

    def _free(self, path: str) -> bool:
        entry = self._maps.get(path)
        return path not in self._lent and (entry is None or sys.getrefcount(entry[0]) <= _MAPPED)

    def view(self, ref: dict, *, writeable: bool) -> np.ndarray:
        """The array `ref` names, as a view of its file's mapping."""
        dtype, shape = np.dtype(ref["dtype"]), tuple(int(s) for s in ref["shape"])
        count = math.prod(shape)
        mm, _ = self._map(ref["path"], int(ref.get("offset", 0)) + count * dtype.itemsize)
        arr = np.frombuffer(mm, dtype=dtype, count=count, offset=int(ref.get("offset", 0))).reshape(shape)
        if not writeable:
            arr.flags.writeable = False
        if ref["path"] not in self._own:
            self._held.add(ref["path"])
        return arr

    # -- own files

    def array(self, shape, dtype=np.float32) -> np.ndarray:
        """A writable array in one of our files (fill it, then pass it to `put`: it is sent without a copy)."""
        dtype = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        path = self._slot(math.prod(shape) * dtype.itemsize)
        return self.view({"path": path, "dtype": dtype.str, "shape": shape}, writeable=True)

    def _slot(self, nbytes: int) -> str:
        fits = [p for p, size in self._own.items() if size >= nbytes and size <= 2 * nbytes + (1 << 20)
                and self._free(p)]
        if fits:
            path = min(fits, key=self._own.__getitem__)
            self._own[path] = self._own.pop(path)  # most recently used last
        else:
            self._trim(nbytes)
            path = str(self.folder / f"{self.prefix}-{uuid.uuid4().hex[:12]}.bin")
            size = max(nbytes, 1)
            with open(path, "wb") as f:
                f.truncate(size)
            self._own[path] = size
        return path

    def _trim(self, incoming: int) -> None:
        """Remove free files, least recently used first, while the kept ones and the new one exceed the limit."""
        total = sum(self._own.values()) + incoming
        for path in list(self._own):
            if total <= self.keep_bytes:
                break
            if self._free(path):
                total -= self._own.pop(path)
                self._close(path)
                _unlink(path)
                self._gone.append(path)

    def put(self, value: np.ndarray) -> dict:
        """A reference to `value` in shared memory: itself when it lies in a mapped file, else a copy in one of ours."""
        ref = self._where(value)
        if ref is None:
            path = self._slot(value.nbytes)
            mm, _ = self._map(path, value.nbytes)
            dst = np.frombuffer(mm, dtype=value.dtype, count=value.size).reshape(value.shape)
            np.copyto(dst, value)
            del dst
            ref = {"path": path, "dtype": value.dtype.str, "shape": list(value.shape), "offset": 0}
        if ref["path"] in self._own:
            self._lent.add(ref["path"])
        return ref

    def _where(self, value: np.ndarray) -> dict | None:
        if not value.flags.c_contiguous or value.dtype.hasobject:
            return None
        start = value.ctypes.data
        for path in self._own:
            mm, addr = self._maps.get(path, (None, 0))
            if mm is not None and addr <= start and start + value.nbytes <= addr + len(mm):
                return {"path": path, "dtype": value.dtype.str, "shape": list(value.shape), "offset": start - addr}
        return None

    # -- the conversation

    def release(self, paths) -> None:
        """The other side is done with these files of ours."""
        self._lent.difference_update(str(p) for p in paths)

    def releasable(self) -> list[str]:
        """The other side's files we no longer hold a view of (tell it, so it can reuse them)."""
        done = [p for p in self._held if sys.getrefcount(self._maps[p][0]) <= _MAPPED] \
            if self._held else []
        self._held.difference_update(done)
        return done

    def forget(self, paths) -> None:
        """The other side removed these files: drop our mappings, so their memory goes."""
        for p in paths:
            self._held.discard(p)
            self._close(p)

    def removed(self) -> list[str]:
        """Own files removed since the last call (to pass to the other side's `forget`)."""
        gone, self._gone = self._gone, []
        return gone

    def close(self) -> None:
        for path in list(self._maps):
            self._close(path)
        for path in list(self._own):
            _unlink(path)
        self._own.clear()
        self._lent.clear()
        self._held.clear()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Values <-> JSON


def encode(value, files: SharedFiles):
    if isinstance(value, np.ndarray):
        return {"__shm__": files.put(value)}
    if isinstance(value, Path):
        return {"__path__": str(value)}
    if isinstance(value, dict):
        return {"__dict__": {str(k): encode(v, files) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"__list__": [encode(v, files) for v in value], "tuple": isinstance(value, tuple)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot send a {type(value).__name__} to the engine worker")


def decode(value, files: SharedFiles, *, copy: bool = True, writeable: bool = True):
    """The value back; arrays are copies, or (copy=False) views of the shared file, read-only unless `writeable`."""
    if isinstance(value, dict):
        if "__shm__" in value:
            arr = files.view(value["__shm__"], writeable=writeable and not copy)
            return np.array(arr) if copy else arr
        if "__path__" in value:
            return Path(value["__path__"])
        if "__dict__" in value:
            return {k: decode(v, files, copy=copy, writeable=writeable) for k, v in value["__dict__"].items()}
        if "__list__" in value:
            items = [decode(v, files, copy=copy, writeable=writeable) for v in value["__list__"]]
            return tuple(items) if value.get("tuple") else items
    return value
