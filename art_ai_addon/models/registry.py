"""The model registry: public weights files the add-on knows, read from registry.json (data, not code)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError

REGISTRY_FILE = Path(__file__).with_name("registry.json")
REQUIRED_FIELDS = ("name", "task", "architecture", "file", "size", "sha256", "licence", "source", "url",
                   "description")

_cache: dict[str, dict] | None = None


def entries() -> dict[str, dict]:
    """name -> entry dict, in registry order (loaded once; tests may patch the returned dicts)."""
    global _cache
    if _cache is None:
        data = json.loads(REGISTRY_FILE.read_text(encoding="utf-8"))
        _cache = {m["name"]: m for m in data["models"]}
    return _cache


def get(name: str) -> dict | None:
    """The entry for a registry name or a registry file name; None if it is not a registry model."""
    if not name:
        return None
    table = entries()
    if name in table:
        return table[name]
    for entry in table.values():
        if entry["file"] == name:
            return entry
    return None


def require(name: str) -> dict:
    entry = get(name)
    if entry is None:
        raise InputError(f"model {name!r} is not in the registry; known models: {', '.join(entries())} "
                         "(see `python -m art_ai_addon models list`)")
    return entry


def has_checksum(entry: dict) -> bool:
    """True when the registry can vouch for a file's bytes (a full SHA-256 or the publisher's MD5)."""
    return bool(entry.get("sha256") or entry.get("md5")) and not entry.get("unverified")


def by_url(url: str) -> list[dict]:
    """Entries that come out of the same download (the fast-style models share one zip)."""
    return [e for e in entries().values() if e.get("url") == url]


def validate(data: dict | None = None) -> list[str]:
    """Problems with the registry's format (empty when fine); the tests and a CI check call this."""
    if data is None:
        data = json.loads(REGISTRY_FILE.read_text(encoding="utf-8"))
    problems = []
    seen_names, seen_files = set(), set()
    for i, m in enumerate(data.get("models", [])):
        label = m.get("name", f"#{i}")
        for key in REQUIRED_FIELDS:
            if key not in m:
                problems.append(f"{label}: missing {key}")
        if m.get("name") in seen_names:
            problems.append(f"{label}: duplicate name")
        if m.get("file") in seen_files and not m.get("archive_member"):
            problems.append(f"{label}: duplicate file")
        seen_names.add(m.get("name"))
        seen_files.add(m.get("file"))
        sha = m.get("sha256")
        if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
            problems.append(f"{label}: sha256 is not 64 lower-case hex digits")
        md5 = m.get("md5")
        if md5 is not None and (len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5)):
            problems.append(f"{label}: md5 is not 32 lower-case hex digits")
        if not sha and not md5 and not m.get("unverified"):
            problems.append(f"{label}: no checksum, so it must be marked unverified")
        if m.get("unverified") and sha:
            problems.append(f"{label}: marked unverified but carries a sha256")
        if not str(m.get("url", "")).startswith("https://"):
            problems.append(f"{label}: url must be https")
        if not isinstance(m.get("size"), int) or m.get("size", 0) <= 0:
            problems.append(f"{label}: size must be a positive number of bytes")
    return problems
