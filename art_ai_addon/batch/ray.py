"""`batch JOB.toml --ray [ADDRESS]`: the items of each step as Ray tasks, with the same outputs and resume rules.

Independent items (files, non-temporal frames of a folder) are one task each. Sequences (temporal stylize,
render) are cut into as many contiguous segments as the cluster has CPUs; each segment starts from the frame
before it, re-stylized, exactly like a `--chunk` would. A GPU is requested only for methods whose record in the
methods table says they use one (`Method.gpu`), only when the device is not "cpu", and only when the cluster
reports GPUs (so tasks never wait forever for a GPU that does not exist). Ray is optional:
`pip install art_ai_addon[ray]`.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path

from ..errors import ArtAIError, InputError, NotAvailableError
from .plan import Item
from .run import run_segment, segments
from .schema import Step

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # art_ai_addon/


def require_ray():
    try:
        import ray
    except ImportError:
        raise NotAvailableError("--ray needs Ray, which is not installed: pip install art_ai_addon[ray] "
                                "(or pip install -r requirements-ray.txt)") from None
    return ray


_ADDRESS = re.compile(r"^(ray://)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{1,5})$")
_HOW = ("give HOST:PORT of the head node (as `ray start --head` printed it), ray://HOST:PORT for Ray Client, or "
        "--ray alone for a local instance")


def check_address(address: str | None) -> tuple[str, int] | None:
    """(host, port) of a cluster address, None for "auto"/"local"/none; anything else is refused before the job
    is planned (Ray's own ValueError was an internal error)."""
    if address in (None, "", "auto", "local"):
        return None
    m = _ADDRESS.match(str(address).strip())
    if not m or not 0 < int(m["port"]) < 65536:
        raise InputError(f"--ray: {address!r} is not a Ray address; {_HOW}")
    return m["host"].strip("[]"), int(m["port"])


def reach(address: str, timeout: float = 5.0) -> None:
    """A quick TCP connection to the address first: an unreachable cluster is one line in seconds, not a hang or a
    traceback from inside Ray."""
    where = check_address(address)
    if where is None:
        return
    try:
        socket.create_connection(where, timeout=timeout).close()
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ArtAIError(f"--ray: cannot reach a Ray cluster at {address} ({why}); start it there with "
                         f"`ray start --head`, check the address, or {_HOW.split(', or ')[-1]}") from None


def _segment_task(step, items, before, before_done, force, job_path):
    """Runs inside a Ray worker: no progress lines (the driver reports), written files on the shared disk."""
    return run_segment(step, items, before, before_done, force, None, job_path)


def wants_gpu(step: Step, cluster_gpus: float) -> bool:
    if cluster_gpus < 1 or step.opts.get("device", "auto") == "cpu":
        return False
    method = step.method
    return method is not None and method.gpu


class RayRunner:
    def __init__(self, address: str | None, progress):
        ray = require_ray()
        self.ray = ray
        self.progress = progress
        self.owned = False
        if not ray.is_initialized():
            # "auto" (plain --ray): an existing cluster if there is one (RAY_ADDRESS, or one started here),
            # else a local instance on this machine
            reach(address)
            try:
                ray.init(address=None if address in (None, "auto") else address, include_dashboard=False,
                         log_to_driver=False, runtime_env={"py_modules": [str(PACKAGE_DIR)]})
            except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise ArtAIError(f"--ray: cannot start or join Ray at {address or 'auto'} ({first}); {_HOW}") \
                    from None
            self.owned = True
            self.runtime_env = None
        else:  # the caller's instance: workers on this machine find the package beside this file (on a remote
            # cluster the caller installs art_ai_addon there or passes py_modules to their own ray.init)
            self.runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
                p for p in (str(PACKAGE_DIR.parent), os.environ.get("PYTHONPATH", "")) if p)}}
        resources = ray.cluster_resources()
        self.cpus = max(1, int(resources.get("CPU", 1)))
        self.gpus = float(resources.get("GPU", 0))
        self.remote = ray.remote(_segment_task)
        self._log(f"Ray: {self.cpus} CPU(s), {self.gpus:g} GPU(s)")

    def _log(self, msg: str) -> None:
        if not getattr(self.progress, "quiet", False):
            print(f"art_ai: {msg}", file=sys.stderr, flush=True)

    def run_step(self, step: Step, pending: list[Item], items: list[Item], force: bool, job_path):
        options = {"num_cpus": 1, "num_gpus": 1 if wants_gpu(step, self.gpus) else 0, "max_retries": 0}
        if self.runtime_env:
            options["runtime_env"] = self.runtime_env
        fn = self.remote.options(**options)
        light = Step(step.number, step.task, step.opts)  # without its full item list
        owner = {fn.remote(light, seg, before, done, force, str(job_path)): seg
                 for seg, before, done in segments(step, pending, items, self.cpus)}
        results, left, finished = [], list(owner), 0
        while left:
            ready, left = self.ray.wait(left, num_returns=1)
            for ref in ready:
                try:
                    got = self.ray.get(ref)
                except Exception as exc:  # a worker that died: its items failed, the others go on
                    got = [(it.index, f"Ray task failed: {type(exc).__name__}: {str(exc)[:300]}")
                           for it in owner[ref]]
                results += got
                finished += len(got)
                self._log(f"[step {step.number}] {finished}/{len(pending)} item(s) finished")
        return results

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()
