"""The engine worker: a long-lived Python process that runs engine tasks for Blender (`python -m art_ai_addon worker`).

Blender's own Python has numpy and the standard library only; methods that need PyTorch (or OpenCV, where the
add-on bundles none) run here, in the PyTorch Python the user chose, so a crash in torch or CUDA costs a job and
not the artist's scene, and GPU memory is freed when the worker closes.

Protocol: JSON lines. Requests on stdin: {"op": "run", "id", "task", "kwargs", "config"}, {"op": "cancel", "id"},
{"op": "ping"}, {"op": "quit"}. Replies on stdout: {"type": "ready"}, {"type": "progress", "id", "fraction",
"message"}, {"type": "log", "message"}, {"type": "result", "id", "value", "info"}, {"type": "error", "id",
"error", "message"}, {"type": "cancelled", "id"}, {"type": "pong"}. Arrays travel in files both sides keep mapped
in a folder of the client's (memory-backed where the system has one; exchange.py): {"__shm__": {"path", "dtype",
"shape", "offset"}}. A run request also says which of the worker's files the client is done with ("release") and
which of its own it removed ("forget").
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from .errors import ArtAIError, Cancelled, NotAvailableError
from .exchange import SharedFiles, decode, encode

PROTOCOL = 1
READY_TIMEOUT = 120.0  # first start of a cold torch install can be slow
KILL_AFTER_CANCEL = 3.0  # seconds a job may take to notice a cancel before the worker is killed


class WorkerError(ArtAIError):
    """The worker could not be started, or stopped in the middle of a job."""


def exchange_dir() -> Path:
    """Where the two sides put arrays: shared memory (/dev/shm) where there is one, else the temp folder."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    d = base / f"art_ai_{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    d.mkdir(mode=0o700, exist_ok=True)
    return d


# ---------------------------------------------------------------------------------------------
# The worker side


class _Server:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.job: tuple | None = None  # (id, cancel event, thread)
        self.files: SharedFiles | None = None  # the worker's result files, in the client's folder

    def _files(self, folder: str) -> SharedFiles:
        if self.files is None or str(self.files.folder) != folder:
            if self.files is not None:
                self.files.close()
            self.files = SharedFiles(Path(folder), "w")
        return self.files

    def send(self, **msg) -> None:
        line = json.dumps(msg)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()

    def run_job(self, msg: dict, cancel: threading.Event) -> None:
        from . import tasks
        from .core import set_threads
        from .errors import InputError

        job_id = msg.get("id")
        files = self._files(str(msg.get("exchange") or exchange_dir()))
        files.release(msg.get("release") or ())
        files.forget(msg.get("forget") or ())
        last = [0.0, -1.0]

        def progress(fraction, message=""):
            now = time.monotonic()
            if now - last[0] < 0.05 and fraction < 1.0 and fraction - last[1] < 0.05:
                return
            last[0], last[1] = now, fraction
            self.send(type="progress", id=job_id, fraction=float(fraction), message=str(message)[:300])

        reply: dict = {"type": "error", "id": job_id, "error": "WorkerError", "message": "no result"}
        try:
            config = msg.get("config") or {}
            if "threads" in config:
                set_threads(int(config["threads"] or 0))
            if "max_pixels" in config:
                from .imageio import set_max_pixels

                set_max_pixels(int(config["max_pixels"] or 0))
            if config.get("models_dir") is not None:
                from . import models

                models.set_preference_dir(config["models_dir"] or None)
            kwargs = decode(msg.get("kwargs") or {}, files, copy=False, writeable=False)  # engine functions copy
            if not isinstance(kwargs, dict):
                raise InputError("worker: the job's arguments must be a table")
            value, info = tasks.run(str(msg.get("task")), kwargs, progress=progress, cancel=cancel)
            del kwargs
            reply = {"type": "result", "id": job_id, "value": encode(value, files), "info": encode(info, files)}
        except Cancelled:
            reply = {"type": "cancelled", "id": job_id}
        except ArtAIError as exc:
            reply = {"type": "error", "id": job_id, "error": type(exc).__name__, "message": str(exc),
                     "exit_code": getattr(exc, "exit_code", 1)}
        except MemoryError:
            reply = {"type": "error", "id": job_id, "error": "MemoryError",
                     "message": "out of memory; use a smaller image, a lower memory budget or fewer steps"}
        except BaseException as exc:  # noqa: BLE001 - an internal error is reported, the worker stays up
            import traceback

            traceback.print_exc(file=sys.stderr)
            reply = {"type": "error", "id": job_id, "error": type(exc).__name__,
                     "message": f"{type(exc).__name__}: {exc}", "internal": True}
        finally:
            _free_gpu()
            self.job = None  # before the reply: the client may send its next job the moment it reads it
            self.send(**reply)

    def serve(self, stdin) -> int:
        self.send(type="ready", protocol=PROTOCOL, pid=os.getpid(), python=sys.executable)
        for raw in stdin:
            raw = raw.strip()
            if not raw:
                continue
            try:
                msg = json.loads(raw)
            except (json.JSONDecodeError, RecursionError):
                self.send(type="log", message=f"worker: not a JSON line: {raw[:80]!r}")
                continue
            if not isinstance(msg, dict):
                self.send(type="log", message=f"worker: expected a JSON object such as {{\"op\": \"ping\"}}, got "
                                              f"{type(msg).__name__} {raw[:60]!r}; ignored")
                continue
            op = msg.get("op")
            if op == "run":
                if self.job is not None:
                    self.send(type="error", id=msg.get("id"), error="WorkerBusy",
                              message="the engine worker is already running a job")
                    continue
                cancel = threading.Event()
                thread = threading.Thread(target=self.run_job, args=(msg, cancel), daemon=True)
                self.job = (msg.get("id"), cancel, thread)
                thread.start()
            elif op == "cancel":
                job = self.job
                if job is not None and (msg.get("id") is None or msg.get("id") == job[0]):
                    job[1].set()
            elif op == "ping":
                self.send(type="pong")
            elif op == "probe":
                self.send(type="probe", **probe())
            elif op == "quit":
                break
        job = self.job
        if job is not None:
            job[1].set()
            job[2].join(timeout=KILL_AFTER_CANCEL)
        if self.files is not None:
            self.files.close()
        return 0


def _free_gpu() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001 - freeing memory must never fail a job
            pass


def probe() -> dict:
    """What this Python offers: torch version and device, OpenCV version (imports them: worker side only)."""
    out: dict = {"python": sys.executable, "version": sys.version.split()[0], "torch": None, "device": "cpu",
                 "opencv": None}
    try:
        import torch

        out["torch"] = torch.__version__
        if torch.cuda.is_available():
            out["device"] = f"cuda ({torch.cuda.get_device_name(0)})"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            out["device"] = "mps"
    except Exception as exc:  # noqa: BLE001
        out["torch_error"] = f"{type(exc).__name__}: {exc}"[:200]
    try:
        import cv2

        out["opencv"] = cv2.__version__
    except Exception:  # noqa: BLE001
        pass
    return out


def main() -> int:
    """Entry point of `python -m art_ai_addon worker`: the protocol on the real stdout, everything else on stderr."""
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # libraries that print (even from C) cannot corrupt the protocol
    sys.stdout = sys.stderr
    return _Server(proto).serve(sys.stdin)


# ---------------------------------------------------------------------------------------------
# The client side (the job runner in Blender, tests, benchmarks)


def engine_root() -> Path:
    """The folder that holds this package: put on the worker's PYTHONPATH so it runs these same files."""
    return Path(__file__).resolve().parent.parent


class WorkerClient:
    """One worker process for one Python interpreter; `run` is called from one job thread at a time."""

    def __init__(self, python: str, *, idle_timeout: float = 600.0, log=None):
        self.python = str(python)
        self.idle_timeout = idle_timeout
        self.log = log or (lambda line: print(f"art_ai worker: {line}", file=sys.stderr))
        self.proc: subprocess.Popen | None = None
        self.replies: queue.Queue = queue.Queue()
        self.tail: list[str] = []
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        self._next = 0
        self._idle_timer: threading.Timer | None = None
        self.files: SharedFiles | None = None

    # -- process

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.alive():
            return
        if not Path(self.python).exists():
            raise WorkerError(f"PyTorch Python: {self.python} does not exist; set Preferences > Add-ons > Art AI > "
                              "PyTorch Python (or ART_AI_TORCH_PYTHON) to a Python interpreter that has torch")
        env = dict(os.environ)
        root = str(engine_root())
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.pop("PYTHONHOME", None)  # Blender's own; it would point the other interpreter at the wrong library
        env["PYTHONUNBUFFERED"] = "1"
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        try:
            self.proc = subprocess.Popen([self.python, "-m", "art_ai_addon", "worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                                         bufsize=1, encoding="utf-8", creationflags=flags)
        except OSError as exc:
            raise WorkerError(f"PyTorch Python: cannot start {self.python} ({exc.strerror or exc})") from None
        self.replies = queue.Queue()
        self.tail = []
        threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(self.proc,), daemon=True).start()
        msg = self._next_reply(READY_TIMEOUT, None)
        if msg is None or msg.get("type") != "ready":
            self.stop()
            raise WorkerError(f"the engine worker ({self.python}) did not start{self._tail_text()}")

    def _read_stdout(self, proc) -> None:
        for raw in proc.stdout:
            try:
                self.replies.put(json.loads(raw))
            except json.JSONDecodeError:
                self.log(raw.rstrip())
        self.replies.put(None)  # end of stream: the process is gone

    def _read_stderr(self, proc) -> None:
        for raw in proc.stderr:
            line = raw.rstrip()
            if line:
                self.tail = (self.tail + [line])[-12:]
                self.log(line)

    def _exit_text(self) -> str:
        """How the process ended ('was killed (signal 9)', 'stopped with exit code 1'); reaps it."""
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.stop()
        if code is not None and code < 0:
            return f"was killed (signal {-code})"
        return f"stopped unexpectedly (exit code {code})"

    def _tail_text(self) -> str:
        lines = [t for t in self.tail if t.strip()]
        return f": {lines[-1][:300]}" if lines else ""

    def _next_reply(self, timeout: float | None, cancel) -> dict | None:
        """The next reply; None when the process ended. Waits in short slices so cancel is seen quickly."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return self.replies.get(timeout=0.1)
            except queue.Empty:
                pass
            if cancel is not None and cancel.is_set():
                return {"type": "_cancel"}
            if end is not None and time.monotonic() > end:
                return None
            if self.proc is not None and self.proc.poll() is not None and self.replies.empty():
                time.sleep(0.05)
                if self.replies.empty():
                    return None

    def _send(self, **msg) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the process is gone; the reader reports it

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the worker to quit, kill it if it does not; frees its (GPU) memory."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        files, self.files = self.files, None
        if files is not None:  # views the caller still holds stay valid: their mappings outlive the files
            files.close()
            shutil.rmtree(files.folder, ignore_errors=True)
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except Exception:  # noqa: BLE001
                pass

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def _arm_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self.idle_timeout and self.idle_timeout > 0:
            self._idle_timer = threading.Timer(self.idle_timeout, self._idle_stop)
            self._idle_timer.daemon = True
            self._idle_timer.start()

    def _idle_stop(self) -> None:
        if self.lock.acquire(blocking=False):
            try:
                if time.monotonic() - self.last_used >= self.idle_timeout * 0.9:
                    self.stop()
            finally:
                self.lock.release()

    # -- jobs

    def probe(self, timeout: float = 60.0) -> dict:
        with self.lock:
            self.start()
            self._send(op="probe")
            msg = self._next_reply(timeout, None)
            while msg is not None and msg.get("type") != "probe":
                msg = self._next_reply(timeout, None)
            self.last_used = time.monotonic()
            self._arm_idle()
        if msg is None:
            raise WorkerError(f"the engine worker ({self.python}) did not answer{self._tail_text()}")
        msg.pop("type", None)
        return msg

    def run(self, task: str, kwargs: dict, *, progress=None, cancel=None, config: dict | None = None,
            copy: bool = True):
        """(value, info) of `task` run in the worker; raises what the engine raised (same class and message)."""
        with self.lock:
            self.start()
            self._next += 1
            job_id = self._next
            files = self._exchange()
            sent: list = []
            try:
                request = encode(kwargs, files)
                sent = _shm_paths(request, [])
                self._send(op="run", id=job_id, task=task, kwargs=request, config=config or {},
                           exchange=str(files.folder), release=files.releasable(), forget=files.removed())
                return self._wait(job_id, task, progress, cancel, copy)
            finally:
                files.release(sent)  # the job is over: the worker reads none of our files any more
                self.last_used = time.monotonic()
                self._arm_idle()

    def array(self, shape, dtype=np.float32) -> np.ndarray:
        """A writable array in shared memory: fill it and pass it to `run`, and it travels without a copy."""
        with self.lock:
            return self._exchange().array(shape, dtype)

    def _exchange(self) -> SharedFiles:
        """This client's shared files, in a folder of its own (removed when the worker stops)."""
        if self.files is None:
            root = exchange_dir()
            _remove_stale(root)
            folder = root / f"c{os.getpid()}-{uuid.uuid4().hex[:8]}"
            folder.mkdir(mode=0o700)
            self.files = SharedFiles(folder, "c")
        return self.files

    def _wait(self, job_id, task: str, progress, cancel, copy: bool):
        cancel_sent = None
        while True:
            msg = self._next_reply(None if cancel_sent is None else 0.2, None if cancel_sent else cancel)
            if msg is not None and msg.get("type") == "_cancel":
                self._send(op="cancel", id=job_id)
                cancel_sent = time.monotonic()
                continue
            if msg is None:
                if cancel_sent is not None:
                    if self.alive() and time.monotonic() - cancel_sent < KILL_AFTER_CANCEL:
                        continue
                    self.kill()  # it did not stop in time: the next job starts a fresh worker
                    self.stop()
                    raise Cancelled("cancelled")
                raise WorkerError(f"the engine worker {self._exit_text()} while running {task}; nothing was "
                                  f"changed{self._tail_text()}")
            kind = msg.get("type")
            if msg.get("id") not in (None, job_id):
                continue
            if kind == "progress" and progress is not None:
                try:
                    progress(float(msg.get("fraction", 0.0)), str(msg.get("message", "")))
                except Cancelled:
                    cancel_sent = cancel_sent or time.monotonic()
                    self._send(op="cancel", id=job_id)
            elif kind == "log":
                self.log(str(msg.get("message", "")))
            elif kind == "result":
                files = self._exchange()
                return decode(msg.get("value"), files, copy=copy), decode(msg.get("info") or {}, files)
            elif kind == "cancelled":
                raise Cancelled("cancelled")
            elif kind == "error":
                raise _rebuild(msg)


def _shm_paths(value, out: list) -> list:
    """The shared files an encoded value names."""
    if isinstance(value, dict):
        if "__shm__" in value:
            out.append(value["__shm__"]["path"])
        for v in value.values():
            _shm_paths(v, out)
    elif isinstance(value, list):
        for v in value:
            _shm_paths(v, out)
    return out


def _remove_stale(root: Path) -> None:
    """Exchange folders of Blender sessions that ended without cleaning up (crash, kill): their process is gone."""
    if os.name != "posix":
        return
    for d in root.glob("c*-*"):
        try:
            pid = int(d.name[1:].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (ValueError, OSError):
            pass


def _rebuild(msg: dict) -> BaseException:
    """The engine's exception again, so the caller reports it as if it ran in its own process."""
    from . import errors

    name = msg.get("error", "")
    text = str(msg.get("message", ""))
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, ArtAIError):
        return cls(text)
    if name == "MemoryError":
        return ArtAIError(text)
    if name == "WorkerBusy":
        return WorkerError(text)
    if msg.get("internal"):
        return WorkerError(f"internal error in the engine worker: {text} (details in the system console)")
    return ArtAIError(text)


_clients: dict[str, WorkerClient] = {}
_clients_lock = threading.Lock()


def client(python: str) -> WorkerClient:
    """The session's warm worker for `python` (started on first use)."""
    with _clients_lock:
        c = _clients.get(str(python))
        if c is None:
            c = _clients[str(python)] = WorkerClient(python)
        return c


def stop_all() -> None:
    with _clients_lock:
        for c in _clients.values():
            c.stop()
        _clients.clear()


def not_available(needs, where: str = "Blender's Python") -> NotAvailableError:
    """The one line for a method whose modules are missing here and no PyTorch Python is set."""
    from .methods import NEED_LABELS

    labels = " and ".join(NEED_LABELS[n] for n in needs)
    if "torch" in needs:
        how = ("set Preferences > Add-ons > Art AI > PyTorch Python (or the environment variable ART_AI_TORCH_PYTHON) "
               "to a Python with torch, or create one there (see Getting started)")
    else:
        how = ("install the Art AI build for your platform, which bundles OpenCV, or set Preferences > Add-ons > "
               "Art AI > PyTorch Python to a Python with OpenCV (see Getting started)")
    return NotAvailableError(f"this method needs {labels}, which {where} does not have: {how}")
