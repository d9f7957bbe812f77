"""Model store: find, import, verify, remove and safely load weights files.

Signatures of `sha256_file`, `find`, `load_weights` and `save_user_model` are used by the stylize, texture
and repair engines: keep them stable.

Every file in the store has a recorded checksum: the registry's (for the public models it can vouch for)
or the one in the file's JSON sidecar (`<stem>.json`: user-made and imported models, and registry models
without a published checksum, recorded when they entered the store). A file whose bytes no longer match
is reported by `verify_store` and refused by `find`.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import pickle
import re
import tempfile
import threading
import warnings
import zipfile
from pathlib import Path

from ..errors import ArtAIError, InputError, ModelError
from . import layouts, store_root, registry

CACHE_FILE = ".checksums.json"
MAX_MEMBER_BYTES = 1 << 30  # no registry model is larger; an archive member above this is never unpacked
_WEIGHTS_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors", ".onnx", ".param", ".bin")  # .param/.bin: ncnn
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_mem_cache: dict[str, dict] = {}


# ---------------------------------------------------------------------------------------------
# Hashing


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def md5_file(path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# Sidecars and the recorded checksum of each file


def sidecar_path(path) -> Path:
    p = Path(path)
    return p.with_name(p.stem + ".json")


def read_sidecar(path) -> dict | None:
    """The sidecar of a weights file (None if there is none, it is not ours or it is malformed)."""
    sc = sidecar_path(path)
    if not sc.is_file():
        return None
    try:
        meta = json.loads(sc.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("file") != Path(path).name or _sidecar_problem(sc, meta):
        return None
    return meta


def _write_json_atomic(path: Path, data: dict) -> None:
    from ..imageio import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def expected_checksum(path) -> tuple[str, str, str] | None:
    """(algorithm, hex digest, where it comes from) recorded for a store file, or None."""
    meta = read_sidecar(path)
    if meta and meta.get("sha256"):
        return "sha256", meta["sha256"], "sidecar"
    entry = registry.get(Path(path).name)
    if entry and entry["file"] == Path(path).name and registry.has_checksum(entry):
        if entry.get("sha256"):
            return "sha256", entry["sha256"], "registry"
        return "md5", entry["md5"], "registry"
    return None


def _cache_load(root: Path) -> dict:
    key = str(root)
    if key not in _mem_cache:
        try:
            _mem_cache[key] = json.loads((root / CACHE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _mem_cache[key] = {}
    return _mem_cache[key]


def _cache_store(root: Path, name: str, record: dict | None) -> None:
    cache = _cache_load(root)
    if record is None:
        cache.pop(name, None)
    else:
        cache[name] = record
    try:
        _write_json_atomic(root / CACHE_FILE, cache)
    except ArtAIError:
        pass  # a read-only store still works; the hashes are kept in memory for this session


def _stat_key(st: os.stat_result) -> dict:
    """What identifies a file's bytes without reading them. Size and mtime alone can be kept while a bit flips
    (`touch -r`, os.utime); the change time cannot be set back by a user, and a new file has a new inode."""
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino,
            "dev": st.st_dev}


def _same_stat(rec: dict | None, key: dict) -> bool:
    return bool(rec) and all(rec.get(k) == v for k, v in key.items())


def file_digest(path, algorithm: str = "sha256", *, use_cache: bool = True) -> str:
    """Hash of a store file; cached by size, modification and change time, inode and device, so big files are
    read once and any write to a file (which changes its change time) makes it hashed again."""
    p = Path(path)
    key = _stat_key(p.stat())
    root = p.parent
    cache = _cache_load(root)
    rec = cache.get(p.name)
    if use_cache and _same_stat(rec, key) and rec.get(algorithm):
        return rec[algorithm]
    digest = sha256_file(p) if algorithm == "sha256" else md5_file(p)
    rec = dict(rec) if _same_stat(rec, key) else {}
    rec.update({**key, algorithm: digest})
    _cache_store(root, p.name, rec)
    return digest


def check_file(path, *, use_cache: bool = True) -> tuple[str, str]:
    """("ok" | "corrupt" | "unrecorded", detail) for one file in the store."""
    p = Path(path)
    expected = expected_checksum(p)
    if expected is None:
        return "unrecorded", "no recorded checksum (add it with `models import`)"
    algorithm, want, origin = expected
    have = file_digest(p, algorithm, use_cache=use_cache)
    if have != want:
        return "corrupt", (f"{algorithm.upper()} {have[:16]}... does not match the {origin}'s {want[:16]}... "
                           "(damaged, truncated or replaced)")
    return "ok", f"{algorithm.upper()} matches the {origin}"


# ---------------------------------------------------------------------------------------------
# Finding and loading


def _is_bare(text: str) -> bool:
    """A name, not a path: no folder in it (`vgg19`, `candy.pth`; not `./candy.pth`, `~/m.pth`, `/x/m.pth`)."""
    return Path(text).name == text and not text.startswith("~")


def _registry_file_entry(name: str) -> dict | None:
    """The registry entry whose file is called `name` (None when no registry file is)."""
    entry = registry.get(name)
    return entry if entry is not None and entry["file"] == name else None


_outside_digests: dict[tuple, str] = {}  # (path, stat key, algorithm) -> digest, for files outside the store


def _check_outside_file(p: Path, entry: dict) -> None:
    """A file outside the store named like a registry file: it must be the published one (when the registry has
    its checksum), or it is refused; a same-named file of other bytes is never used in its place."""
    if not registry.has_checksum(entry):
        return  # the registry cannot vouch for any copy of it: a file of the user's, like any other
    algorithm = "sha256" if entry.get("sha256") else "md5"
    st = p.stat()
    key = (str(p.resolve()), tuple(_stat_key(st).values()), algorithm)
    if key not in _outside_digests:
        _outside_digests[key] = sha256_file(p) if algorithm == "sha256" else md5_file(p)
    if _outside_digests[key] != entry[algorithm]:
        raise ModelError(f"{p} is named like the registry's {entry['name']} ({entry['file']}) but does not match "
                         "its published checksum (damaged, or another file); it is not used. Rename it to use it as "
                         f"a model of your own, or import the published file with `python -m art_ai_addon models "
                         f"import`")


def _store_file_ok(candidate: Path) -> Path:
    status, detail = check_file(candidate)
    if status == "corrupt":
        raise ModelError(f"{candidate} is corrupt: {detail}; it is not used. Run "
                         "`python -m art_ai_addon models verify`, then download or import it again")
    return candidate


def find(name_or_file, models_dir_=None) -> Path | None:
    """A registry name / file / `<name>.pth` / `.pt` / `.ckpt` in the store, or an existing path; None if absent.

    A registry name or registry file name given bare is looked up only in the store (a file of that name in the
    working folder is not it). A path to a file named like a registry file must match the published checksum.
    A store file whose bytes do not match its recorded checksum raises ModelError instead of being used.
    """
    if not name_or_file:
        return None
    text = str(name_or_file)
    root = store_root(models_dir_)
    bare = _is_bare(text)
    entry = registry.get(text) if bare else None
    if entry is None:
        p = Path(text).expanduser()
        if p.is_file():
            if p.resolve().parent == root.resolve():
                return _store_file_ok(p)
            outside = _registry_file_entry(p.name)
            if outside is not None:
                _check_outside_file(p, outside)
            return p
    names = [entry["file"]] if entry is not None else []
    if bare:
        names += [text, f"{text}.pth", f"{text}.pt", f"{text}.ckpt"]
    for candidate_name in names:
        candidate = root / candidate_name
        if candidate.is_file():
            return _store_file_ok(candidate)
    return None


def _torch_load_plain(torch, p: Path, mmap: bool):
    kwargs = {"map_location": "cpu", "weights_only": True}
    if mmap:
        try:
            return torch.load(str(p), mmap=True, **kwargs)
        except RuntimeError as exc:  # legacy (pre-zip) files cannot be memory-mapped
            if "mmap" not in str(exc).lower() and "zip" not in str(exc).lower():
                raise
    return torch.load(str(p), **kwargs)


# Training checkpoints (PyTorch Lightning, as LaMa's official best.ckpt is) pickle metadata beside the weights: the
# OmegaConf training config under `hyper_parameters`, its class under `hparams_type`, callback states keyed by the
# callback's class. weights_only=True refuses those globals. They are not needed, so each one is replaced by an inert
# stand-in of ours, allowlisted under that exact name for the one load (torch.serialization.safe_globals): the
# unpickler gets our class instead of importing the real one, and our class builds nothing and keeps nothing. Only
# names from these metadata namespaces are stood in for; anything else (exec, eval, os.system, ...) is refused.
_INERT_PREFIXES = ("pytorch_lightning.", "lightning.", "lightning_fabric.", "omegaconf.", "typing.", "numpy.dtypes.")
_INERT_NAMES = frozenset({
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.str", "builtins.int", "builtins.float",
    "builtins.bool", "builtins.bytes", "builtins.object", "builtins.type", "builtins.frozenset", "builtins.NoneType",
    "collections.defaultdict", "collections.deque", "argparse.Namespace", "pathlib.Path", "pathlib.PosixPath",
    "pathlib.WindowsPath", "pathlib.PurePath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath", "numpy.dtype",
    "numpy.ndarray", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
})
# filled by the unpickler with SETITEMS / APPENDS, which it only allows on a plain dict / list
_DICT_LIKE = ("collections.defaultdict", "AttributeDict")
_LIST_LIKE = ("collections.deque",)
_SAFE_LOCK = threading.Lock()  # the allowlist is process-wide: one such load at a time


class _Inert:
    """Stands in for a class or function named in a checkpoint's training metadata; it runs no code of theirs."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass  # the metadata is dropped: only the tensors are used


class _InertDict(_Inert):
    def __new__(cls, *args, **kwargs):
        return {}


class _InertList(_Inert):
    def __new__(cls, *args, **kwargs):
        return []


def _stand_in(full_name: str):
    base = _InertDict if full_name.endswith(_DICT_LIKE) else _InertList if full_name.endswith(_LIST_LIKE) else _Inert
    return type(full_name.rsplit(".", 1)[-1], (base,), {"__module__": __name__, "stands_in_for": full_name})


def unsafe_globals(torch, p: Path) -> list[str]:
    """The globals a torch.save zip needs beyond weights_only's own, read from its opcodes without running them."""
    return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(p)))


def _torch_load(torch, p: Path, mmap: bool):
    """weights_only=True; for a training checkpoint, with its metadata classes replaced by inert stand-ins."""
    try:
        return _torch_load_plain(torch, p, mmap)
    except pickle.UnpicklingError as first:
        try:
            needed = unsafe_globals(torch, p)
        except Exception:  # a legacy pickle or a damaged zip: nothing more can be said safely
            raise first from None
        if not needed:  # refused for another reason (an opcode weights_only does not run): say that one
            raise first from None
        foreign = [n for n in needed if not (n.startswith(_INERT_PREFIXES) or n in _INERT_NAMES)]
        if foreign:
            raise pickle.UnpicklingError(f"it needs {', '.join(foreign)}, which is neither weights nor training "
                                         "metadata") from None
        with _SAFE_LOCK, torch.serialization.safe_globals([(_stand_in(n), n) for n in needed]):
            return _torch_load_plain(torch, p, mmap)


def _refusal_reason(exc: BaseException) -> str:
    """What the safe loader objected to, without torch's advice around it: that text says to re-run torch.load
    with weights_only=False, which is the one thing never to do with a file that was refused."""
    text = " ".join(str(exc).split())
    m = re.search(r"WeightsUnpickler error: (.*?)(?: Please use| Check the documentation|$)", text)
    if m and m.group(1).strip():
        text = m.group(1).strip()
    elif "weights_only" in text:
        text = type(exc).__name__
    return text[:200].rstrip(". ") or type(exc).__name__


def load_weights(path, *, expected: dict | None = None, what: str = "weights", mmap: bool = False,
                 name: str | None = None):
    """torch.load(weights_only=True) only; a pickle that needs code is refused without running it.

    `expected` maps key -> shape tuple; a missing key or other shape raises ModelError naming both.
    Returns a dict of tensors (a checkpoint wrapped as {"state_dict": ...} is unwrapped; a Lightning checkpoint's
    pickled training metadata is read into inert stand-ins and dropped, see `_torch_load`).
    A TorchScript archive is refused unread. `name` is the file name shown in messages (default: the path's).
    """
    from ..core import require_torch

    torch = require_torch(what)
    p = Path(path)
    shown = name or p.name
    if not p.is_file():
        raise ModelError(f"{what}: {p} does not exist")
    if layouts.is_torchscript(p):
        raise ModelError(layouts.torchscript_refusal(shown, what))
    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol would come before our one line
            warnings.filterwarnings("ignore", message=r".*pickle protocol", category=UserWarning)
            obj = _torch_load(torch, p, mmap)
    except Exception as exc:  # UnpicklingError for unsafe pickles, RuntimeError for corrupt zips
        raise ModelError(f"{what}: {shown} is not a plain-tensor weights file or is damaged (refused by the safe "
                         f"loader: {_refusal_reason(exc)}); nothing in it was run") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise ModelError(f"{what}: {shown} does not hold a dict of tensors (a state_dict)")
    if expected:
        for key, shape in expected.items():
            if key not in obj:
                raise ModelError(f"{what}: {shown} has no key {key!r}; it is not the expected layout")
            if tuple(obj[key].shape) != tuple(shape):
                raise ModelError(f"{what}: {shown} key {key!r} has shape {tuple(obj[key].shape)}, "
                                 f"expected {tuple(shape)}")
    return obj


def load_torchscript(path, *, device="cpu", what: str = "LaMa"):
    """Refused: a TorchScript archive carries code that torch.jit.load runs, so it is no weights source here."""
    raise ModelError(layouts.torchscript_refusal(Path(path).name, what))


def check_layout(path, architecture: str | None, *, what: str | None = None, name: str | None = None) -> str | None:
    """Load `path` safely and check it against `architecture`'s layout; returns the architecture
    (detected when None was given). Raises ModelError naming the file (`name`, default the path's) and the first
    mismatching key. TorchScript is refused; ONNX graphs are read (never run) by the onnx package."""
    p = Path(path)
    shown = name or p.name
    what = what or shown
    if architecture in layouts.TORCHSCRIPT or layouts.is_torchscript(p):
        raise ModelError(layouts.torchscript_refusal(shown, what))
    if architecture in layouts.NCNN:
        layouts.check_ncnn(p, architecture, name=shown, what=what)
        return architecture
    if architecture in layouts.ONNX or (architecture is None and _is_onnx(p)):
        if architecture is None:
            raise ModelError(f"{what}: {shown} is an ONNX graph; pass --architecture "
                             f"({', '.join(sorted(layouts.ONNX))}) or --as a registry name")
        layouts.check_onnx(p, architecture, name=shown, what=what)
        return architecture
    sd = load_weights(p, what=what, mmap=True, name=shown)
    if architecture is None:
        return layouts.detect(sd)
    problem = layouts.mismatch(sd, architecture)
    if problem:
        raise ModelError(f"{what}: {shown} {problem}; it is not a {architecture} weights file")
    return architecture


def _is_onnx(p: Path) -> bool:
    """An ONNX protobuf (a ModelProto starts with field 1, ir_version, as a varint: byte 0x08), not a zip/pickle."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    return p.suffix.lower() == ".onnx" or (len(head) == 2 and head[0] == 0x08 and head[1] < 0x80)


# ---------------------------------------------------------------------------------------------
# Saving, importing, verifying, removing


def _registry_clash(name: str) -> dict | None:
    """The registry entry a user-model name would shadow: its name, its file or its file's stem (any case, for
    case-folding file systems)."""
    folded = name.casefold()
    stem = Path(folded).stem if Path(folded).suffix in _WEIGHTS_SUFFIXES else folded
    for entry in registry.entries().values():
        file = entry["file"].casefold()
        if folded in (entry["name"].casefold(), file) or stem in (entry["name"].casefold(), Path(file).stem):
            return entry
    return None


def _check_name(name: str) -> str:
    """A name for a model of the user's: letters, digits, '.', '_', '-', and never a registry model's."""
    if not _NAME_RE.match(name or ""):
        raise InputError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (at most 100 characters)")
    entry = _registry_clash(name)
    if entry is not None:
        raise InputError(f"model name {name!r} is the registry model {entry['name']} ({entry['file']}); a model of "
                         "your own would shadow it: choose another name")
    return name


def save_user_model(state_dict: dict, name: str, *, architecture: str, trained_on: str = "", extra: dict | None = None,
                    models_dir_=None) -> Path:
    """Save a user-made model (trained fast style, texture GAN) as `<name>.pth` + `<name>.json` sidecar."""
    from ..core import require_torch
    from ..imageio import write_bytes_atomic

    torch = require_torch("saving a model")
    _check_name(name)
    root = store_root(models_dir_)
    root.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, buf)
    path = root / f"{name}.pth"
    write_bytes_atomic(path, buf.getvalue())
    meta = {
        "name": name,
        "file": path.name,
        "architecture": architecture,
        "trained_on": trained_on,
        "created": _now(),
        "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
        "user_made": True,
    }
    meta.update(extra or {})
    _write_json_atomic(sidecar_path(path), meta)
    return path


def _copy_hashing(src: Path, dst_dir: Path, progress=None, label="") -> tuple[Path, str, str]:
    """Copy src to a temporary file in dst_dir, hashing as it goes; returns (tmp, sha256, md5)."""
    from ..core import reporter

    rep = reporter(progress)
    size = max(src.stat().st_size, 1)
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{src.name}.", suffix=".part", dir=str(dst_dir))
    done = 0
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            for block in iter(lambda: fin.read(1 << 20), b""):
                fout.write(block)
                sha.update(block)
                md5.update(block)
                done += len(block)
                rep(0.8 * done / size, f"copying {label or src.name}")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), sha.hexdigest(), md5.hexdigest()


def _match_registry(entry: dict, sha: str, md5: str) -> bool:
    if entry.get("sha256"):
        return sha == entry["sha256"]
    return md5 == entry["md5"]


def install_file(tmp: Path, entry: dict | None, *, name: str, architecture: str | None, sha: str,
                 root: Path, extra: dict | None = None) -> Path:
    """Rename a checked temporary file into the store and record its checksum (sidecar where needed)."""
    suffix = ".onnx" if _is_onnx(tmp) else ".pth"
    final = root / (entry["file"] if entry else (name if Path(name).suffix in (".pth", ".pt", ".onnx")
                                                 else f"{name}{suffix}"))
    sc = sidecar_path(final)
    meta = None
    vouched = entry is not None and registry.has_checksum(entry) and registry.get(entry["file"]) == entry
    if not vouched:
        meta = {"name": name, "file": final.name, "architecture": architecture, "sha256": sha,
                "added": _now(), "user_made": False}
        if entry is not None and registry.get(entry["file"]) == entry:
            meta.update({"registry": True, "unverified": True})
        meta.update(extra or {})
    from ..imageio import _final_mode

    os.chmod(tmp, _final_mode(final))  # mkstemp made it 0600: give it the mode a plain open() would
    os.replace(tmp, final)
    if meta is not None:
        _write_json_atomic(sc, meta)
    elif sc.is_file() and read_sidecar(final) is not None:
        sc.unlink()  # the registry vouches for this file now; an old sidecar would shadow it
    _cache_store(root, final.name, {**_stat_key(final.stat()), "sha256": sha})
    return final


def import_model(src, name: str | None = None, *, architecture: str | None = None, trained_on: str = "",
                 models_dir_=None, progress=None) -> tuple[Path, list[str]]:
    """Copy a local weights file into the store; returns (stored path, notes for the user).

    Registry models (by --as NAME, by file name or by checksum) must match the published checksum; every
    model must fit its architecture's key/shape layout. Nothing is left in the store if a check fails.
    """
    from ..core import reporter

    rep = reporter(progress)
    s = Path(src).expanduser()
    if not s.is_file():
        raise InputError(f"import: {s} does not exist or is not a file")
    root = store_root(models_dir_)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtAIError(f"import: cannot create the model store {root}: {exc.strerror or exc}") from None
    if _is_model_archive(s):
        return _import_archive(s, name, root, rep)
    entry = registry.get(name) if name else registry.get(s.name)
    if name and entry is None:
        _check_name(name)
    tmp, sha, md5 = _copy_hashing(s, root, rep.sub(0.0, 0.8))
    notes: list[str] = []
    try:
        if entry is None and not name:
            entry = next((e for e in registry.entries().values()
                          if registry.has_checksum(e) and _match_registry(e, sha, md5)), None)
        if entry is not None:
            if registry.has_checksum(entry):
                if not _match_registry(entry, sha, md5):
                    algo = "SHA-256" if entry.get("sha256") else "MD5"
                    have = sha if entry.get("sha256") else md5
                    want = entry.get("sha256") or entry.get("md5")
                    raise ModelError(
                        f"import: {s.name} does not match the published checksum of {entry['name']} "
                        f"({algo} {have[:12]}..., expected {want[:12]}...): it is damaged or a different file. "
                        f"Get {entry['file']} from {entry['url']}, or import it as your own model with "
                        f"--as OTHER_NAME")
                notes.append(f"{entry['name']}: checksum matches the registry")
            else:
                notes.append(f"{entry['name']}: the registry has no published checksum for this model, so the "
                             f"checksum was not checked; recorded this file's SHA-256 {sha[:16]}... for later "
                             "verification")
            rep(0.85, "checking the layout")
            check_layout(tmp, entry["architecture"], what=f"import {entry['name']}", name=s.name)
            final = install_file(tmp, entry, name=entry["name"], architecture=entry["architecture"], sha=sha,
                                 root=root, extra={"imported_from": str(s)})
        else:
            rep(0.85, "checking the layout")
            found = check_layout(tmp, architecture, what="import", name=s.name)
            if found is None:
                known = ", ".join(layouts.known_architectures())
                raise ModelError(f"import: {s.name} does not match any known layout ({known}); pass "
                                 "--architecture NAME for a model of another kind, or --as a registry name")
            user_name = _check_name(name or s.stem)
            final = install_file(tmp, None, name=user_name, architecture=found, sha=sha, root=root,
                                 extra={"trained_on": trained_on, "imported_from": str(s)})
            notes.append(f"{user_name}: stored as your own {found} model with SHA-256 {sha[:16]}...")
    finally:
        tmp.unlink(missing_ok=True)
    rep(1.0, "imported")
    return final, notes


def _is_model_archive(path: Path) -> bool:
    """A plain zip of weights files (like pytorch/examples' saved_models.zip), not a torch.save/TorchScript zip."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return not any(n.endswith(("data.pkl", "constants.pkl")) for n in names)


def _import_archive(src: Path, name: str | None, root: Path, rep) -> tuple[Path, list[str]]:
    """Import every registry model found in a downloaded archive (or only `name`), each fully checked."""
    wanted = {e.get("archive_member"): e for e in registry.entries().values() if e.get("archive_member")}
    if name:
        entry = registry.get(name)
        wanted = {k: e for k, e in wanted.items() if entry is not None and e is entry}
    done: list[Path] = []
    notes: list[str] = []
    with zipfile.ZipFile(src) as zf, tempfile.TemporaryDirectory(prefix="art_ai_import_") as tmpdir:
        infos = [i for i in zf.infolist() if Path(i.filename).name in wanted and not i.is_dir()]
        if not infos:
            raise ModelError(f"import: {src.name} is a zip archive without any of the models it could hold "
                             f"({', '.join(sorted(wanted)) or name}); unzip it and import the weights file itself")
        for info in infos:  # every size is checked before anything is unpacked
            check_member_size(info, wanted[Path(info.filename).name], src.name)
        for i, info in enumerate(infos):
            entry = wanted[Path(info.filename).name]
            out = Path(tmpdir) / Path(info.filename).name
            extract_member(zf, info, out, member_limit(entry), src.name)
            try:
                path, more = import_model(out, entry["name"], models_dir_=root,
                                          progress=rep.sub(i / len(infos), (i + 1) / len(infos)))
            except ModelError as exc:  # name the user's archive, not our temporary copy of its member
                raise ModelError(str(exc).replace(str(out), f"{src.name}:{info.filename}")) from None
            done.append(path)
            notes += more
    return done[0], notes + [f"imported {len(done)} model(s) from {src.name}"]


def member_limit(entry: dict) -> int:
    """The most bytes an archive member may unpack to for this registry entry (its exact size, or some slack)."""
    size = int(entry.get("size") or 0)
    limit = size if entry.get("size_exact") else int(size * 1.5) + (16 << 20)
    return min(limit, MAX_MEMBER_BYTES)


def check_member_size(info: zipfile.ZipInfo, entry: dict, archive: str) -> None:
    """Refuse, before unpacking, a member whose declared size does not fit the registry's (a zip bomb, or not it)."""
    limit = member_limit(entry)
    if info.file_size > limit:
        raise ModelError(f"import: {archive}: {info.filename} would unpack to {format_size(info.file_size)}, more "
                         f"than the {format_size(limit)} that {entry['name']} can be; nothing was unpacked "
                         "(the archive is damaged or not the published one)")


def extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path, limit: int, archive: str) -> None:
    """Unpack one member, stopping (and deleting it) if it grows past `limit` whatever its header says."""
    done = 0
    with zf.open(info) as fin, open(out, "wb") as fout:
        for block in iter(lambda: fin.read(1 << 20), b""):
            done += len(block)
            if done > limit:
                break
            fout.write(block)
    if done > limit:
        out.unlink(missing_ok=True)
        raise ModelError(f"import: {archive}: {info.filename} unpacks to more than {format_size(limit)}; refused")


def _sidecar_problem(sc: Path, meta) -> str | None:
    """Why a store JSON cannot be a sidecar (None when it is a well-formed one)."""
    if not isinstance(meta, dict):
        return "is not a JSON object"
    f = meta.get("file")
    if not isinstance(f, str) or not f or Path(f).name != f or f.startswith("."):
        return f"has {'no' if f is None else 'an invalid'} \"file\" ({f!r}); it must name a file in the store"
    for key in ("name", "architecture", "sha256", "trained_on", "imported_from", "licence"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            return f"has an invalid \"{key}\" ({meta[key]!r})"
    return None


def _scan_sidecars(root: Path) -> tuple[list[dict], list[tuple[Path, str]]]:
    """(well-formed sidecars of models not in the registry, [(broken sidecar, what is wrong)])."""
    out, broken = [], []
    if not root.is_dir():
        return out, broken
    for sc in sorted(root.glob("*.json")):
        if sc.name.startswith("."):
            continue
        try:
            meta = json.loads(sc.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            broken.append((sc, f"is not readable JSON ({str(exc)[:80]})"))
            continue
        problem = _sidecar_problem(sc, meta)
        if problem:
            broken.append((sc, problem))
        elif not meta.get("registry"):
            out.append(meta)
    return out, broken


def _user_models(root: Path) -> list[dict]:
    return _scan_sidecars(root)[0]


def _weights_files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in _WEIGHTS_SUFFIXES)


def list_models(models_dir_=None) -> list[dict]:
    """Rows for every registry model and every other model in the store (no hashing: cheap for a UI)."""
    root = store_root(models_dir_)
    rows = []
    listed = set()
    for entry in registry.entries().values():
        p = root / entry["file"]
        installed = p.is_file()
        rows.append({"name": entry["name"], "task": entry["task"], "architecture": entry["architecture"],
                     "size": p.stat().st_size if installed else entry["size"], "size_exact": installed or
                     entry.get("size_exact", False), "licence": entry["licence"], "installed": installed,
                     "file": entry["file"], "path": str(p), "registry": True,
                     "unverified": bool(entry.get("unverified")),
                     "description": entry["description"], "source": entry["source"], "url": entry["url"]})
        listed.add(entry["file"])
    for meta in _user_models(root):
        if meta["file"] in listed:
            continue
        p = root / meta["file"]
        listed.add(meta["file"])
        rows.append({"name": meta.get("name", p.stem), "task": "user model" if meta.get("user_made") else "imported",
                     "architecture": meta.get("architecture") or "?", "size": p.stat().st_size if p.is_file() else 0,
                     "size_exact": True, "licence": meta.get("licence", "yours"), "installed": p.is_file(),
                     "file": meta["file"], "path": str(p), "registry": False, "unverified": False,
                     "description": f"trained on {meta['trained_on']}" if meta.get("trained_on") else "",
                     "source": meta.get("imported_from", ""), "url": ""})
    for sc, problem in _scan_sidecars(root)[1]:
        rows.append({"name": sc.stem, "task": "broken", "architecture": "?", "size": 0, "size_exact": True,
                     "licence": "?", "installed": False, "file": sc.name, "path": str(sc), "registry": False,
                     "unverified": True, "broken": True,
                     "description": f"broken entry: {sc.name} {problem}; fix or delete that file",
                     "source": "", "url": ""})
    for p in _weights_files(root):
        if p.name not in listed:
            rows.append({"name": p.stem, "task": "?", "architecture": "?", "size": p.stat().st_size,
                         "size_exact": True, "licence": "?", "installed": True, "file": p.name, "path": str(p),
                         "registry": False, "unverified": True, "description": "no checksum recorded",
                         "source": "", "url": ""})
    return rows


def verify_store(models_dir_=None, progress=None) -> list[dict]:
    """Re-hash every weights file in the store; rows with status ok / corrupt / unrecorded / missing."""
    from ..core import reporter

    rep = reporter(progress)
    root = store_root(models_dir_)
    files = _weights_files(root)
    results = []
    for i, p in enumerate(files):
        rep(i / max(len(files), 1), f"hashing {p.name}")
        status, detail = check_file(p, use_cache=False)
        results.append({"file": p.name, "path": str(p), "status": status, "detail": detail})
    users, broken = _scan_sidecars(root)
    for meta in users:
        if not (root / meta["file"]).is_file():
            results.append({"file": meta["file"], "path": str(root / meta["file"]), "status": "missing",
                            "detail": "its sidecar exists but the weights file is gone"})
    for sc, problem in broken:
        results.append({"file": sc.name, "path": str(sc), "status": "broken",
                        "detail": f"broken entry: {sc.name} {problem}; fix or delete that file"})
    rep(1.0, "verified")
    return results


def remove_model(name: str, models_dir_=None) -> list[Path]:
    """Delete a model's weights file and its sidecar from the store; returns what was removed.

    Only weights files (.pth, .pt, .ckpt, .safetensors, .onnx) that are registry files or carry our sidecar are
    models: any other file in the store folder (a picture, a stray download) is never deleted."""
    root = store_root(models_dir_)
    entry = registry.get(name)
    candidates = [root / entry["file"]] if entry else []
    if not entry:
        for meta in _user_models(root):
            if meta.get("name") == name:
                candidates.append(root / meta["file"])
        candidates += [root / name, *(root / f"{name}{suffix}" for suffix in _WEIGHTS_SUFFIXES)]
    removed: list[Path] = []
    refused: list[str] = []
    for p in candidates:
        if p.parent != root or p.name.startswith(".") or not p.is_file():
            continue
        ours = read_sidecar(p) is not None
        if p.suffix.lower() not in _WEIGHTS_SUFFIXES or not (ours or _registry_file_entry(p.name)):
            refused.append(p.name)
            continue
        for q in (p, sidecar_path(p)) if ours else (p,):
            if q.is_file():
                q.unlink()
                removed.append(q)
        _cache_store(root, p.name, None)
        break
    if not removed and refused:
        raise ModelError(f"remove: {refused[0]} in {root} is not a model of the store (not a weights file from the "
                         "registry or with a sidecar of ours); nothing was deleted, delete it yourself if you mean "
                         "to")
    if not removed:
        raise ModelError(f"remove: {name} is not installed in {root}")
    return removed


def format_size(n: int, exact: bool = True) -> str:
    units = ["B", "KB", "MB", "GB"]
    v = float(n)
    for unit in units:
        if v < 1000 or unit == units[-1]:
            text = f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
            return text if exact else "~" + text
        v /= 1000.0
    return str(n)
