"""Model store: where weights live, and safe loading (the model-store issue fills in the rest)."""

from __future__ import annotations

import os
from pathlib import Path

_preference_dir: str | None = None


def set_preference_dir(path: str | None) -> None:
    """Called by the Blender layer with the add-on preference (or its extension_path_user default)."""
    global _preference_dir
    _preference_dir = path or None


def store_root(explicit=None) -> Path:
    """explicit path > env ART_AI_MODELS > the add-on preference > ~/.cache/art_ai/models."""
    for candidate in (explicit, os.environ.get("ART_AI_MODELS"), _preference_dir):
        if candidate:
            return Path(candidate).expanduser()
    return Path.home() / ".cache" / "art_ai" / "models"
