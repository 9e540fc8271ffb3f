"""Carrying out a ``Plan`` against a target: many operations in parallel, with a bound and retries.

``execute`` runs the plan's phases in order (deletes, emptied folders, new
folders, uploads), each in parallel through a thread pool; ``Transfer`` holds
one run's mutable state: counters, failures, the abort switch, and the
manifest, where only confirmed operations are recorded (and checkpointed
every ``CHECKPOINT_EVERY_S``), so whatever a failed run leaves undone is
exactly what the next run does. A failure of one file is that file's; a fatal
one (or a transient one out of retries) aborts the rest.

Separate from the pure plan (``plan``) and from the run around it (``engine``:
lock, snapshot, history, the record).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from lib.sync import manifest as manifest_mod
from lib.sync.backoff import with_retries
from lib.sync.errors import Kind, SyncAborted, classify
from lib.sync.gitfiles import LocalFile, sha256_bytes
from lib.sync.options import SyncOptions
from lib.sync.plan import Plan
from lib.sync.records import log_line
from lib.sync.targets import Target

CHECKPOINT_EVERY_S = 1.0
PROGRESS_EVERY_S = 2.0


class Transfer:
    """The mutable state of one run's transfer: counters, failures, the abort switch."""

    def __init__(self, home: Path, project: str, repo: Path, target: Target, options: SyncOptions,
                 manifest: manifest_mod.Manifest, *, abort: threading.Event | None = None,
                 deadline: float | None = None) -> None:
        self.home, self.project, self.repo = home, project, repo
        self.target, self.options, self.manifest = target, options, manifest
        self.deadline = deadline if deadline is not None else time.monotonic() + options.deadline_s
        self.abort = abort or threading.Event()
        self.fatal: BaseException | None = None
        self.failures: list[tuple[str, BaseException]] = []
        self.uploaded = self.deleted = self.bytes = 0
        self._saved_at = time.monotonic()
        self._progress_at = time.monotonic()

    # -- one operation, with retries -------------------------------------------------
    def attempt(self, fn: Callable[[Any], Any], item: Any) -> Any:
        return with_retries(fn, item, self.options, abort=self.abort, deadline=self.deadline)

    # -- one phase: many operations in parallel --------------------------------------
    def phase(self, pool: ThreadPoolExecutor, items: Iterable[Any], fn: Callable[[Any], Any],
              done: Callable[[Any, Any], None], name: Callable[[Any], str], *, best_effort: bool = False,
              label: str = "") -> None:
        items = list(items)
        if not items or self.abort.is_set():
            return
        if best_effort:
            futures: dict[Future, Any] = {pool.submit(fn, it): it for it in items}
        else:
            futures = {pool.submit(self.attempt, fn, it): it for it in items}
        finished = 0
        for fut in as_completed(futures):
            item = futures[fut]
            finished += 1
            try:
                result = fut.result()
            except (SyncAborted, CancelledError):
                continue
            except Exception as exc:  # noqa: BLE001 - recorded, never raised
                if best_effort:
                    continue
                self._fail(name(item), exc, futures)
                continue
            done(item, result)
            self._tick(label, finished, len(items))

    def _fail(self, name: str, exc: BaseException, futures: dict[Future, Any]) -> None:
        self.failures.append((name, exc))
        if classify(exc) is Kind.FILE:
            return  # this file only; the rest can still go through
        # Fatal, or transient and out of retries: the target is unusable now.
        if self.fatal is None:
            self.fatal = exc
        self.abort.set()
        for other in futures:
            other.cancel()

    def _tick(self, label: str, finished: int, total: int) -> None:
        now = time.monotonic()
        if now - self._saved_at >= CHECKPOINT_EVERY_S:
            manifest_mod.save(self.home, self.project, self.manifest)
            self._saved_at = now
        if label and now - self._progress_at >= PROGRESS_EVERY_S:
            log_line(self.home, f"[{self.project}] {label} {finished}/{total}")
            self._progress_at = now

    # -- the operations ---------------------------------------------------------------
    def upload(self, f: LocalFile) -> tuple[str, int]:
        data = (self.repo / f.path).read_bytes()
        if len(data) > self.options.max_file_bytes:
            raise OSError(f"{f.path} grew over the size limit while syncing")
        self.target.upload(f.path, data)
        # Record what was actually sent, even if the file changed since the snapshot.
        return sha256_bytes(data), len(data)

    def uploaded_one(self, f: LocalFile, result: tuple[str, int]) -> None:
        sha, size = result
        self.manifest.record_upload(f.path, sha, size)
        self.uploaded += 1
        self.bytes += size

    def deleted_one(self, path: str, _result: object) -> None:
        self.manifest.record_delete(path)
        self.deleted += 1


def execute(run: Transfer, plan: Plan) -> None:
    """Carry ``plan`` out in ``run``: each phase in parallel, a phase after the one it depends on."""
    target = run.target
    with ThreadPoolExecutor(max_workers=max(1, run.options.workers), thread_name_prefix="sync") as pool:
        # Deletes first: a renamed folder or a file that became a folder needs its old name free.
        run.phase(pool, plan.deletes, target.delete, run.deleted_one, str, label="deleting")
        # Emptied folders, one depth at a time: a parent is only empty once its children are gone.
        for depth in sorted({d.count("/") for d in plan.stale_dirs}, reverse=True):
            level = [d for d in plan.stale_dirs if d.count("/") == depth]
            run.phase(pool, level, target.remove_empty_dir, lambda *_: None, str, best_effort=True)
        run.phase(pool, plan.mkdirs, target.mkdirs, lambda *_: None, lambda d: d or "(project folder)")
        run.phase(pool, plan.uploads, run.upload, run.uploaded_one, lambda f: f.path, label="uploading")
