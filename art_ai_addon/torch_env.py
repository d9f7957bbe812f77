"""The environment creator (full build only): a venv with the PyTorch build for this machine.

`create_torch_env` makes a virtual environment with a base Python 3.10-3.13 (python3.11 on PATH, or Blender's
own interpreter, which has venv), then runs *that environment's* pip to install the pinned torch build
(CUDA, ROCm, macOS/MPS or CPU, picked from the driver) plus numpy<2 and OpenCV. Nothing is installed into
Blender's Python and nothing is added to `sys.path`: the engine worker runs under the new interpreter.
Offline studios pass `wheels_dir` (a folder of wheels: `--no-index --find-links DIR`).

The extensions-platform build leaves this file out (no run-time installer there); `deps.can_create_env()`.
"""

from __future__ import annotations

import datetime
import os
import platform
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from . import deps
from .errors import ArtAIError, Cancelled

PYTORCH_INDEX = "https://download.pytorch.org/whl"
PYPI_INDEX = "https://pypi.org/simple"
# CUDA builds of PyTorch, newest first, with the lowest driver CUDA version we pick each for. A heuristic:
# cu12x wheels run on any CUDA 12 driver (minor-version compatibility), cu126 keeps the older GPUs that
# cu128 dropped; drivers older than CUDA 12 get the CPU build.
CUDA_VARIANTS = [((13, 0), "cu130"), ((12, 8), "cu128"), ((12, 0), "cu126")]
ROCM_VARIANT = "rocm6.4"
DEFAULT_REQUIREMENTS = [deps.PACKAGES[k][0] for k in ("torch", "numpy", "opencv")]


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


def env_python(folder) -> Path:
    """The interpreter inside a venv folder."""
    folder = Path(folder)
    return folder / "Scripts" / "python.exe" if os.name == "nt" else folder / "bin" / "python"


def find_base_python() -> str | None:
    """A Python 3.10-3.13 with venv that can make the environment: python3.11 on PATH, else this process's own
    interpreter (Blender's bundled Python has venv and ensurepip)."""
    candidates = [shutil.which(n) for n in ("python3.11", "python3.12", "python3.10", "python3.13")]
    candidates.append(sys.executable)
    check = "import sys, venv, ensurepip; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))"
    for exe in dict.fromkeys(c for c in candidates if c):
        try:
            if subprocess.run([exe, "-c", check], capture_output=True, timeout=30).returncode == 0:
                return exe
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def build_pip_command(requirements, *, python: str, index_url: str | None = None,
                      extra_index_url: str | None = None, find_links=None) -> list[str]:
    """`python -m pip install ...` for the environment's own interpreter (binary wheels only, never building)."""
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
           "--no-warn-script-location", "--only-binary=:all:", "--upgrade"]
    if find_links:
        cmd += ["--no-index", "--find-links", str(find_links)]
    else:
        if index_url:
            cmd += ["--index-url", index_url]
        if extra_index_url:
            cmd += ["--extra-index-url", extra_index_url]
    return cmd + list([requirements] if isinstance(requirements, str) else requirements)


def plan(requirements, *, python: str, accelerator=None, wheels_dir=None,
         system: str | None = None) -> list[tuple[str, list[str]]]:
    """[(label, pip command)]: one pip run, so torch, numpy and OpenCV resolve together."""
    requirements = list(requirements)
    index = extra = None
    label = ", ".join(requirements)
    if not wheels_dir and any(r.split("=")[0].split("<")[0].split(">")[0].strip() == "torch" for r in requirements):
        index, build = torch_index(accelerator or deps.accelerator_cached(), system)
        extra = PYPI_INDEX if index else None  # torch's own dependencies (sympy, jinja2...) and OpenCV live on PyPI
        label = f"{label} ({build})"
    return [(label, build_pip_command(requirements, python=python, index_url=index, extra_index_url=extra,
                                      find_links=wheels_dir))]


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


def run_logged(cmd: list[str], *, log_path=None, progress=None, cancel=None, label: str = "",
               env: dict | None = None) -> None:
    """Run one command (pip, venv), streaming its lines to `log_path` and to `progress(fraction, line)`;
    `cancel` (a threading.Event) stops it. ArtAIError naming the log when it fails."""
    env = dict(os.environ if env is None else env)
    env["PYTHONNOUSERSITE"] = "1"  # pip must not see or touch the user's site-packages
    for var in ("PYTHONHOME", "PYTHONPATH", "PIP_REQUIRE_VIRTUALENV", "PIP_TARGET", "PIP_PREFIX", "PIP_USER"):
        env.pop(var, None)
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
            raise ArtAIError(f"{label}: cannot start {cmd[0]} ({exc.strerror or exc})") from None

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
        raise ArtAIError(f"{label} failed (exit {rc}): {reason[:300]}{where}")
    if progress is not None:
        progress(1.0, f"done: {label}")


def create_torch_env(folder, *, base_python: str | None = None, accelerator=None, wheels_dir=None,
                     progress=None, cancel=None, log_path=None, requirements=None) -> str:
    """A venv in `folder` with `requirements` (default: the pinned torch build, numpy<2, OpenCV); its python.

    An existing working environment there is updated in place; a new one that fails or is cancelled is removed
    again (nothing half-made is left). The log goes to `log_path` (default `<folder>.log` beside it).
    `accelerator` ("cuda", (12, 4)) etc. defaults to this machine's (deps.accelerator_cached())."""
    if not deps.can_create_env():
        raise ArtAIError("this build of Art AI cannot create a PyTorch environment: make a Python 3.11 venv with "
                         "torch yourself and set the preference PyTorch Python (or ART_AI_TORCH_PYTHON) to its python")
    from .core import reporter

    folder = Path(folder)
    if wheels_dir is not None and not Path(wheels_dir).is_dir():
        raise ArtAIError(f"PyTorch environment: the wheels folder {wheels_dir} does not exist")
    base = base_python or find_base_python()
    if not base:
        raise ArtAIError("PyTorch environment: no Python 3.10-3.13 with venv found; install Python 3.11 "
                         "(python.org) so that python3.11 is on PATH, then try again")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtAIError(f"PyTorch environment: cannot create {folder.parent}: {exc.strerror or exc}") from None
    log_path = Path(log_path) if log_path else folder.parent / f"{folder.name}.log"
    rep = reporter(progress, cancel)
    python = env_python(folder)
    fresh = not (python.exists() and deps.probe_python(python, timeout=120)["numpy"] is not None)
    try:
        if fresh:
            shutil.rmtree(folder, ignore_errors=True)
            run_logged([str(base), "-m", "venv", str(folder)], log_path=log_path, cancel=cancel,
                       progress=rep.sub(0.0, 0.1), label="creating the virtual environment")
        steps = plan(requirements or DEFAULT_REQUIREMENTS, python=str(python), accelerator=accelerator,
                     wheels_dir=wheels_dir)
        for i, (label, cmd) in enumerate(steps):
            sub = rep.sub(0.1 + 0.85 * i / len(steps), 0.1 + 0.85 * (i + 1) / len(steps))
            sub(0.0, f"installing {label}")
            run_logged(cmd, log_path=log_path, progress=sub, cancel=cancel, label=f"installing {label}")
        if requirements is None:
            rep(0.96, "checking the environment")
            answer = deps.probe_python(python, timeout=300)
            if not answer["ok"]:
                raise ArtAIError(f"the new PyTorch environment does not work: {answer['error']}; log: {log_path}")
    except BaseException:
        if fresh:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    rep(1.0, f"PyTorch environment ready: {python}")
    return str(python)
