"""PyTorch outside Blender: find a Python that has it, ask it what it runs on, and (full build only) make one.

Blender's own process never imports torch and never changes `sys.path` (DESIGN.md, Processes): methods that
need PyTorch run in the engine worker under a separate "PyTorch Python". This module only looks at such
interpreters from the outside (`probe_python` runs them once in a subprocess) and tells the machine's
accelerator (`detect_accelerator`, cached by `accelerator_cached`, never to be called on a draw path).

Making an environment (`create_torch_env`: a venv with the right torch build, installed by that venv's own pip)
lives in `torch_env.py`, which only the full build carries; the extensions-platform build leaves it out and
`can_create_env()` is False there. No bpy here, and nothing optional is imported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path


ACCELERATOR_TIMEOUT = 3.0  # seconds nvidia-smi may take before we call the machine CPU-only

# key -> (pip requirement, import name, distribution names)
PACKAGES = {
    "torch": ("torch==2.13.0", "torch", ("torch",)),
    "numpy": ("numpy>=1.26,<2", "numpy", ("numpy",)),
    "opencv": ("opencv-python-headless==4.11.0.86", "cv2", ("opencv-python-headless", "opencv-python",
                                                           "opencv-contrib-python-headless", "opencv-contrib-python")),
}


# ---------------------------------------------------------------------------------------------
# This process


def _dist_version(names) -> str | None:
    for dist in names:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def status() -> dict[str, dict]:
    """{"torch": {"present", "version", "location"}, "numpy": ..., "opencv": ...} for this process, importing none."""
    out = {}
    for key, (_req, module, dists) in PACKAGES.items():
        spec = importlib.util.find_spec(module) if module not in sys.modules else sys.modules[module].__spec__
        location = str(Path(spec.origin).parent) if spec is not None and spec.origin else None
        version = _dist_version(dists) if spec is not None else None
        if spec is not None and version is None and module in sys.modules:
            version = getattr(sys.modules[module], "__version__", None)
        out[key] = {"present": spec is not None, "version": version, "location": location}
    return out


def build_flavour() -> str:
    """"platform" (extensions-platform zip) or "full" (adds the environment creator); see _build.py."""
    try:
        from . import _build
    except ImportError:
        return "full"
    return getattr(_build, "FLAVOUR", "full")


def can_create_env() -> bool:
    """True in the full build: the environment creator is there (it still needs Online Access to download)."""
    return build_flavour() == "full" and importlib.util.find_spec(f"{__package__}.torch_env") is not None


# ---------------------------------------------------------------------------------------------
# The machine


def detect_accelerator(system: str | None = None, machine: str | None = None,
                       timeout: float = ACCELERATOR_TIMEOUT) -> tuple[str, tuple | None]:
    """("cuda", (major, minor) of the driver) | ("rocm", None) | ("mps", None) | ("cpu", None).

    May run nvidia-smi (at most `timeout` seconds): call it from a thread or an operator, never while drawing;
    `accelerator_cached()` is the cheap way."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    if system == "darwin":
        return ("mps", None) if machine in ("arm64", "aarch64") else ("cpu", None)
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            text = subprocess.run([smi], capture_output=True, text=True, timeout=timeout).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        m = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", text)
        if m:
            return "cuda", (int(m.group(1)), int(m.group(2)))
    if system == "linux" and (shutil.which("rocminfo") or Path("/opt/rocm").is_dir() or Path("/dev/kfd").exists()):
        return "rocm", None
    return "cpu", None


_accelerator: tuple[str, tuple | None] | None = None
_accelerator_lock = threading.Lock()


def accelerator_cached(refresh: bool = False) -> tuple[str, tuple | None]:
    """detect_accelerator() once per session (the first call may take up to ACCELERATOR_TIMEOUT seconds)."""
    global _accelerator
    with _accelerator_lock:
        if _accelerator is None or refresh:
            _accelerator = detect_accelerator()
        return _accelerator


# ---------------------------------------------------------------------------------------------
# Another Python

_PROBE = r"""
import json, sys
out = {"python": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable}
try:
    import numpy
    out["numpy"] = numpy.__version__
except Exception as exc:
    out["numpy"] = None
try:
    import cv2
    out["cv2"] = cv2.__version__
except Exception:
    out["cv2"] = None
try:
    import torch
    out["torch"] = torch.__version__
    out["cuda"] = bool(torch.cuda.is_available())
    mps = getattr(torch.backends, "mps", None)
    out["mps"] = bool(mps is not None and mps.is_available())
    out["device"] = "cuda" if out["cuda"] else "mps" if out["mps"] else "cpu"
    if out["cuda"]:
        out["device_name"] = torch.cuda.get_device_name(0)
except Exception as exc:
    out["torch"] = None
    out["error"] = "%s: %s" % (type(exc).__name__, exc)
print("ART_AI_PROBE " + json.dumps(out))
"""


def probe_python(path, timeout: float = 60.0) -> dict:
    """Run `path -c ...` once: {"ok", "torch", "cuda", "mps", "device", "error"} (+ "python", "numpy", "cv2").

    "ok" means the engine worker can run there: torch and numpy import. Blocks up to `timeout` seconds (importing
    torch the first time is slow): run it on a thread, never on a draw path. Never raises."""
    answer = {"ok": False, "torch": None, "cuda": False, "mps": False, "device": None, "error": None}
    exe = str(path or "").strip()
    if not exe:
        answer["error"] = "no Python given"
        return answer
    if os.sep in exe or (os.altsep and os.altsep in exe):
        if not Path(exe).is_file():
            answer["error"] = f"{exe} does not exist"
            return answer
    elif shutil.which(exe) is None:
        answer["error"] = f"{exe} is not on PATH"
        return answer
    env = dict(os.environ)
    for var in ("PYTHONHOME", "PYTHONPATH"):  # Blender's settings must not leak into another interpreter
        env.pop(var, None)
    try:
        res = subprocess.run([exe, "-c", _PROBE], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        answer["error"] = f"{exe} did not answer within {timeout:g} s"
        return answer
    except OSError as exc:
        answer["error"] = f"cannot run {exe}: {exc.strerror or exc}"
        return answer
    line = next((t for t in reversed(res.stdout.splitlines()) if t.startswith("ART_AI_PROBE ")), None)
    if line is None:
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        answer["error"] = f"{exe} is not a working Python (exit {res.returncode}): {tail[:200]}"
        return answer
    answer.update(json.loads(line[len("ART_AI_PROBE "):]))
    if answer.get("torch") is None:
        answer["error"] = f"no PyTorch in {exe} ({answer.get('error') or 'import torch failed'})"
    elif answer.get("numpy") is None:
        answer["error"] = f"no numpy in {exe}: install numpy<2 there"
    else:
        answer["ok"], answer["error"] = True, None
    return answer
