"""Values as people type them on the command line and in job files: sizes, frame ranges, farm chunks, 0..1."""

from __future__ import annotations

import argparse


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' or 'N' to (h, w)."""
    try:
        if "x" in text.lower():
            w, h = (int(v) for v in text.lower().split("x", 1))
        else:
            w = h = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH (e.g. 1024x1024), got {text!r}") from None
    if w < 8 or h < 8 or w > 16384 or h > 16384:
        raise argparse.ArgumentTypeError(f"size {text!r} out of range (8 to 16384 pixels per side)")
    return h, w


def parse_chunk(text: str) -> tuple[int, int]:
    """'I/N' (1-based) to (i, n)."""
    try:
        i, n = (int(v) for v in text.split("/", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N (e.g. 2/4), got {text!r}") from None
    if n < 1 or not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"chunk {text!r}: need 1 <= I <= N")
    return i, n


def parse_frames(text: str) -> tuple[int, int]:
    try:
        if "-" in text:
            a, b = (int(v) for v in text.split("-", 1))
        else:
            a = b = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A-B (e.g. 1-250), got {text!r}") from None
    if b < a:
        raise argparse.ArgumentTypeError(f"frames {text!r}: the end comes before the start")
    return a, b


def unit_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{v} is outside 0..1")
    return v


def parse_layer(text: str) -> dict:
    """'TARGET=STYLE[:METHOD[:STRENGTH]]' to {"target", "style", "method", "strength"}.

    TARGET: an object name, collection:NAME, material:NAME or * (everything else). The optional parts are read from
    the right, so a style path may itself hold ':' (C:/styles/oil.jpg).
    """
    from . import methods

    target, sep, rest = str(text).partition("=")
    target = target.strip()
    if not sep or not target or not rest:
        raise argparse.ArgumentTypeError(f"expected TARGET=STYLE[:METHOD[:STRENGTH]] (e.g. Sphere=oil.jpg:arbitrary:0.8"
                                         f", collection:Trees=ink.png, *=paper.jpg), got {text!r}")
    layer: dict = {"target": target}
    parts = rest.split(":")
    if len(parts) > 1:
        try:
            strength = float(parts[-1])
        except ValueError:
            strength = None
        if strength is not None:
            if not 0.0 <= strength <= 1.0:
                raise argparse.ArgumentTypeError(f"layer {target}: strength {strength} is outside 0..1")
            layer["strength"] = strength
            parts = parts[:-1]
    if len(parts) > 1 and parts[-1].lower() in methods.names("stylize"):
        layer["method"] = parts[-1].lower()
        parts = parts[:-1]
    elif len(parts) > 1 and "strength" in layer and parts[-1].lower() not in methods.names("stylize") \
            and "/" not in parts[-1] and "\\" not in parts[-1] and "." not in parts[-1]:
        raise argparse.ArgumentTypeError(f"layer {target}: unknown method {parts[-1]!r}; one of "
                                         f"{', '.join(methods.names('stylize'))}")
    layer["style"] = ":".join(parts)
    if not layer["style"]:
        raise argparse.ArgumentTypeError(f"layer {target}: no style image")
    return layer
