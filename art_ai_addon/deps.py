"""Optional dependencies (PyTorch, OpenCV): detect them, and install them with Blender's own Python and pip.

Blender ships numpy but not torch or OpenCV. OpenCV comes as per-platform wheels in the extension
manifest; PyTorch is installed on request with `pip install --target <extension user dir>/site-packages`,
picking the CPU, CUDA, ROCm or macOS (MPS) build for the machine, and that folder is put on `sys.path`
while the add-on is enabled. Offline studios point `wheels_dir` at a folder of wheels
(`--no-index --find-links DIR`). No bpy here: the Blender layer passes in the folders.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from .errors import ArtAIError, Cancelled

PYTORCH_INDEX = "https://download.pytorch.org/whl"
PYPI_INDEX = "https://pypi.org/simple"
# CUDA builds of PyTorch, newest first, with the lowest driver CUDA version we pick each for. A heuristic:
# cu12x wheels run on any CUDA 12 driver (minor-version compatibility), cu126 keeps the older GPUs that
# cu128 dropped; drivers older than CUDA 12 get the CPU build.
CUDA_VARIANTS = [((13, 0), "cu130"), ((12, 8), "cu128"), ((12, 0), "cu126")]
ROCM_VARIANT = "rocm6.4"

# key -> (pip requirement, import name, distribution names, install without dependencies?)
PACKAGES = {
    "torch": ("torch==2.13.0", "torch", ("torch",), False),
    # --no-deps: its numpy requirement would put a second numpy in front of Blender's own
    "opencv": ("opencv-python-headless", "cv2", ("opencv-python-headless", "opencv-python",
                                                 "opencv-contrib-python-headless", "opencv-contrib-python"), True),
}


# ---------------------------------------------------------------------------------------------
# Detection


def _dist_version(names) -> str | None:
    for dist in names:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def status() -> dict[str, dict]:
    """{"torch": {"present", "version", "location"}, "opencv": ..., "numpy": ...} without importing torch."""
    out = {}
    table = dict(PACKAGES)
    table["numpy"] = ("numpy", "numpy", ("numpy",), False)
    for key, (_req, module, dists, _nodeps) in table.items():
        spec = importlib.util.find_spec(module) if module not in sys.modules else sys.modules[module].__spec__
        location = None
        if spec is not None and spec.origin:
            location = str(Path(spec.origin).parent)
        version = _dist_version(dists) if spec is not None else None
        if spec is not None and version is None and module in sys.modules:
            version = getattr(sys.modules[module], "__version__", None)
        out[key] = {"present": spec is not None, "version": version, "location": location}
    return out


def missing() -> list[str]:
    return [k for k, v in status().items() if k in PACKAGES and not v["present"]]


def detect_accelerator(system: str | None = None, machine: str | None = None) -> tuple[str, tuple | None]:
    """("cuda", (major, minor) of the driver) | ("rocm", None) | ("mps", None) | ("cpu", None)."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    if system == "darwin":
        return ("mps", None) if machine in ("arm64", "aarch64") else ("cpu", None)
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            text = subprocess.run([smi], capture_output=True, text=True, timeout=15).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        m = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", text)
        if m:
            return "cuda", (int(m.group(1)), int(m.group(2)))
    if system == "linux" and (shutil.which("rocminfo") or Path("/opt/rocm").is_dir() or Path("/dev/kfd").exists()):
        return "rocm", None
    return "cpu", None


def torch_index(accelerator: tuple[str, tuple | None], system: str | None = None) -> tuple[str | None, str]:
    """(pip index URL or None for PyPI, human label) for the PyTorch build that fits the machine."""
    system = (system or platform.system()).lower()
    kind, version = accelerator
    if system == "darwin":
        return None, "PyPI build (Apple MPS)" if kind == "mps" else "PyPI build (CPU)"
    if kind == "cuda" and version:
        for need, tag in CUDA_VARIANTS:
            if tuple(version) >= need:
                return f"{PYTORCH_INDEX}/{tag}", f"CUDA build ({tag}, driver supports CUDA {version[0]}.{version[1]})"
        return f"{PYTORCH_INDEX}/cpu", f"CPU build (the NVIDIA driver's CUDA {version[0]}.{version[1]} is too old)"
    if kind == "rocm":
        return f"{PYTORCH_INDEX}/{ROCM_VARIANT}", f"ROCm build ({ROCM_VARIANT})"
    return f"{PYTORCH_INDEX}/cpu", "CPU build"


# ---------------------------------------------------------------------------------------------
# Installing


def python_executable() -> str:
    """Blender's own Python (sys.executable is it in Blender 2.91+ and in the bpy module's interpreter)."""
    return sys.executable


def build_pip_command(requirements, target, *, python: str | None = None, index_url: str | None = None,
                      extra_index_url: str | None = None, find_links=None, no_deps: bool = False) -> list[str]:
    """The pip command that installs `requirements` into `target` (binary wheels only, never building)."""
    cmd = [python or python_executable(), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
           "--no-warn-script-location", "--only-binary=:all:", "--upgrade", "--target", str(target)]
    if find_links:
        cmd += ["--no-index", "--find-links", str(find_links)]
    else:
        if index_url:
            cmd += ["--index-url", index_url]
        if extra_index_url:
            cmd += ["--extra-index-url", extra_index_url]
    if no_deps:
        cmd.append("--no-deps")
    cmd += list(requirements if not isinstance(requirements, str) else [requirements])
    return cmd


def plan(keys, target, *, wheels_dir=None, python: str | None = None, accelerator=None,
         system: str | None = None) -> list[tuple[str, list[str]]]:
    """[(label, pip command)] for dependency keys ("torch", "opencv") or plain requirement strings."""
    steps = []
    for key in keys:
        if key in PACKAGES:
            requirement, _module, _dists, no_deps = PACKAGES[key]
        else:
            requirement, no_deps = key, False
        index = extra = None
        label = requirement
        if key == "torch" and not wheels_dir:
            index, label_build = torch_index(accelerator or detect_accelerator(system), system)
            extra = PYPI_INDEX if index else None  # torch's own dependencies (sympy, jinja2...) live on PyPI
            label = f"{requirement}, {label_build}"
        steps.append((label, build_pip_command([requirement], target, python=python, index_url=index,
                                               extra_index_url=extra, find_links=wheels_dir, no_deps=no_deps)))
    return steps


def _phase_fraction(line: str, current: float) -> float:
    """A rough fraction from pip's output, so a progress bar moves through the phases."""
    text = line.strip()
    if text.startswith("Collecting") or text.startswith("Looking in"):
        return max(current, min(current + 0.05, 0.3))
    if text.startswith("Downloading") or text.startswith("Processing") or "MB" in text and "/" in text:
        return max(current, min(current + 0.05, 0.75))
    if text.startswith("Installing collected packages"):
        return max(current, 0.8)
    if text.startswith("Successfully installed"):
        return 1.0
    return current


def run_pip(cmd: list[str], *, log_path=None, progress=None, cancel=None, label: str = "",
            env: dict | None = None) -> None:
    """Run one pip command, streaming its lines to `log_path` and to `progress(fraction, line)`."""
    env = dict(os.environ if env is None else env)
    env["PYTHONNOUSERSITE"] = "1"  # pip must not see or touch the user's site-packages
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115 - closed in finally
    lines: queue.Queue = queue.Queue()
    tail: list[str] = []
    try:
        if log:
            log.write(f"\n=== {datetime.datetime.now().isoformat(timespec='seconds')} {label}\n$ {' '.join(cmd)}\n")
            log.flush()
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                    bufsize=1)
        except OSError as exc:
            raise ArtAIError(f"installing {label}: cannot start {cmd[0]} ({exc.strerror or exc})") from None

        def reader():
            for raw in proc.stdout:
                lines.put(raw)
            lines.put(None)

        threading.Thread(target=reader, daemon=True).start()
        fraction = 0.0
        while True:
            if cancel is not None and cancel.is_set():
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                if log:
                    log.write("=== cancelled\n")
                raise Cancelled("cancelled")
            try:
                raw = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if raw is None:
                break
            if log:
                log.write(raw)
                log.flush()
            text = raw.rstrip()
            if text:
                tail = (tail + [text])[-8:]
                fraction = _phase_fraction(text, fraction)
                if progress is not None:
                    progress(min(fraction, 0.99), text[:200])
        rc = proc.wait()
        if log:
            log.write(f"=== exit {rc}\n")
    finally:
        if log:
            log.close()
    if rc != 0:
        reason = next((t for t in reversed(tail) if t.startswith("ERROR")), tail[-1] if tail else "no output")
        where = f"; full log: {log_path}" if log_path else ""
        raise ArtAIError(f"installing {label} failed (pip exit {rc}): {reason[:300]}{where}")
    if progress is not None:
        progress(1.0, f"installed {label}")


def install(keys, target, *, wheels_dir=None, python: str | None = None, log_path=None, progress=None, cancel=None,
            accelerator=None) -> Path:
    """Install dependency keys ("torch", "opencv") or requirement strings into `target`, then put it on sys.path.

    `wheels_dir` installs offline from a folder of wheels. Raises ArtAIError with the log's path on failure.
    """
    from .core import reporter

    target = Path(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtAIError(f"install: cannot create {target}: {exc.strerror or exc}") from None
    if wheels_dir is not None and not Path(wheels_dir).is_dir():
        raise ArtAIError(f"install: the wheels folder {wheels_dir} does not exist")
    if log_path is None:
        log_path = target.parent / "install.log"
    rep = reporter(progress, cancel)
    steps = plan(list(keys), target, wheels_dir=wheels_dir, python=python, accelerator=accelerator)
    for i, (label, cmd) in enumerate(steps):
        sub = rep.sub(i / len(steps), (i + 1) / len(steps))
        sub(0.0, f"installing {label}")
        run_pip(cmd, log_path=log_path, progress=sub, cancel=cancel, label=label)
    add_to_sys_path(target)
    rep(1.0, "dependencies installed")
    return target


def add_to_sys_path(folder) -> bool:
    """Put an install folder on sys.path (at the end, so Blender's own numpy keeps priority)."""
    p = str(Path(folder))
    if not Path(p).is_dir() or p in sys.path:
        return False
    sys.path.append(p)
    importlib.invalidate_caches()
    return True


def remove_from_sys_path(folder) -> None:
    p = str(Path(folder))
    while p in sys.path:
        sys.path.remove(p)
