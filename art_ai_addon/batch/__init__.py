"""`batch JOB.toml`: run a list of `[[step]]` tables (stylize, texture, seamless, pbr, detect, inpaint, render).

A job is checked completely before anything runs (schema.py), so a typo on line 40 does not surface after an
hour of frames. Every step expands into items (plan.py: one per file, or one per frame for `render`); an item
whose outputs exist and are newer than its inputs and the job file is skipped, so a crashed or re-queued job
resumes. `--chunk I/N` runs the I-th slice of every step's items, which is all a farm manager needs to split a
job. Items run here (run.py) or as Ray tasks (ray.py), behind one `run_step`.

Relative paths in a job file are relative to the job file's folder, so a job runs the same from any
working directory (as farm workers do).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .plan import Item, mtime, prepare, up_to_date
from .run import LocalRunner, run_item, run_segment
from .schema import OPTIONS, TASKS, Step, load_job, validate

__all__ = ["OPTIONS", "TASKS", "Item", "Step", "load_job", "prepare", "run_batch", "run_item",
           "run_segment", "up_to_date", "validate"]


class Summary:
    def __init__(self):
        self.written = 0
        self.skipped = 0
        self.failed: list[tuple[int, str, str]] = []

    def ok(self, item: Item, before: dict) -> None:
        """Output paths on stdout: the files this run wrote (a resumed frame may only need its stylized file)."""
        self.written += 1
        for q in item.outputs:
            t = mtime(q)
            if t is not None and t != before.get(q):
                print(q, flush=True)

    def fail(self, item: Item, msg: str) -> None:
        self.failed.append((item.step, item.label, msg))
        print(f"art_ai: error: step {item.step} {item.label}: {msg}", file=sys.stderr, flush=True)


def _log(progress, msg: str) -> None:
    if not getattr(progress, "quiet", False):
        print(f"art_ai: {msg}", file=sys.stderr, flush=True)


def _runner(ray_address, progress):
    if not ray_address:
        return LocalRunner(progress)
    from .ray import RayRunner

    return RayRunner(ray_address, progress)


def run_batch(args, progress) -> int:
    """`batch JOB.toml [--force] [--chunk I/N] [--ray [ADDRESS]]`; returns the exit code."""
    job_path = Path(args.job)
    ray_address = getattr(args, "ray", None)
    if ray_address:
        from .ray import check_address, require_ray

        require_ray()
        check_address(ray_address)
    steps, mine = prepare(job_path, args.chunk, quiet=bool(getattr(progress, "quiet", False)))
    started = time.monotonic()
    summary = Summary()
    runner = _runner(ray_address, progress)
    try:
        for step in steps:
            items = mine[step.number]
            pending = items if args.force else [it for it in items if not up_to_date(it, job_path)]
            summary.skipped += len(items) - len(pending)
            _log(progress, f"{step.label}: {len(items)} item(s), {len(items) - len(pending)} up to date, "
                           f"{len(pending)} to do")
            if not pending:
                continue
            before = {q: mtime(q) for it in pending for q in it.outputs}
            by_index = {it.index: it for it in pending}
            for index, err in runner.run_step(step, pending, items, args.force, job_path):
                if err is None:
                    summary.ok(by_index[index], before)
                else:
                    summary.fail(by_index[index], err)
    finally:
        runner.close()
    took = time.monotonic() - started
    part = f" chunk {args.chunk[0]}/{args.chunk[1]}" if args.chunk else ""
    _log(progress, f"batch {job_path.name}{part}: "
                   f"{summary.written} done, {summary.skipped} up to date (skipped), {len(summary.failed)} failed "
                   f"in {took:.1f} s")
    for number, label, msg in summary.failed:
        _log(progress, f"  failed: step {number} {label}: {msg}")
    return 1 if summary.failed else 0
