"""Make a target hold exactly a project's current files, sending only what changed.

One run: take the project lock, snapshot the worktree (git's file list +
sha256), diff it against the manifest of what the target is known to hold,
then delete, prune folders, create folders and upload, in parallel with a
bound, retrying transient failures with backoff. Only confirmed operations
reach the manifest, so whatever a failed run leaves undone is exactly what the
next run does. Alongside, the project's git history goes to its own folder
(``githistory.prepare`` in a thread from the start, ``finish`` once the files
are confirmed). Every run, even a skipped one, ends as one ``SyncRecord``; a
failed one also leaves an entry in the retry queue (``retry.note``, still
under the project lock), which the app's background driver acts on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from random import random
from typing import Any

from lib.sync import githistory as history_mod
from lib.sync import manifest as manifest_mod
from lib.sync import paths, retry
from lib.sync.credentials import Credentials, read_credentials
from lib.sync.errors import Cause, Kind, SyncAborted, SyncDeadline, cause_of, classify, explain
from lib.sync.gitfiles import LocalFile, Snapshot, head_commit, sha256_bytes, snapshot, toplevel
from lib.sync.lock import LockTimeout, project_turn
from lib.sync.options import SyncOptions, load_options
from lib.sync.records import MAX_LISTED, SyncRecord, SyncResult, append_record, log_line, now_iso
from lib.sync.targets import Target, locate_history, make_target

CHECKPOINT_EVERY_S = 1.0
PROGRESS_EVERY_S = 2.0


@dataclass
class Plan:
    uploads: list[LocalFile]
    deletes: list[str]
    mkdirs: list[str]  # deepest missing folders; mkdirs creates their parents
    stale_dirs: list[str]  # folders nothing lives in any more, deepest first

    @property
    def size(self) -> int:
        return len(self.uploads) + len(self.deletes)


def _ancestors(path: str) -> list[str]:
    """``a/b/c.txt`` -> ``["a/b", "a", ""]`` (``""`` is the project root)."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(len(parts), -1, -1)]


def make_plan(snap: Snapshot, manifest: manifest_mod.Manifest) -> Plan:
    """What to do so the target equals ``snap``, given what the manifest says it holds."""
    uploads = [f for p, f in sorted(snap.files.items()) if not manifest.matches(p, f.sha256, f.size)]
    deletes = sorted(p for p in manifest.files if p not in snap.files)
    known: set[str] = {d for p in manifest.files for d in _ancestors(p)}
    wanted: set[str] = {d for f in uploads for d in _ancestors(f.path)} | {""}
    missing = wanted - known
    inner = {d for m in missing if m for d in _ancestors(m)}  # proper ancestors of a folder
    mkdirs = sorted(missing - inner)
    live = {d for p in snap.files for d in _ancestors(p)}
    stale = sorted((known - live) - {""}, key=lambda d: (-d.count("/"), d))
    return Plan(uploads, deletes, mkdirs, stale)


def with_retries(fn: Callable[[Any], Any], item: Any, options: SyncOptions, *,
                 abort: threading.Event | None = None, deadline: float | None = None) -> Any:
    """``fn(item)``, retried with backoff while it fails for a transient reason (``errors.classify``).

    Gives up after ``options.attempts`` tries, at ``deadline`` (monotonic), or
    when ``abort`` is set; a non-transient failure is raised at once.
    """
    tries = 0
    while True:
        if abort is not None and abort.is_set():
            raise SyncAborted()
        if deadline is not None and time.monotonic() >= deadline:
            raise SyncDeadline(f"{options.deadline_s:.0f} s")
        try:
            return fn(item)
        except Exception as exc:  # sorted by classify()
            if classify(exc) is not Kind.TRANSIENT:
                raise
            tries += 1
            if tries >= options.attempts:
                raise
            delay = min(options.backoff_max_s, options.backoff_s * 2 ** (tries - 1))
            retry_after = getattr(exc, "retry_after_secs", None)
            if retry_after:
                delay = max(delay, min(float(retry_after), options.backoff_max_s))
            delay *= 0.75 + random() / 2
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            if abort is not None:
                if abort.wait(delay):
                    raise SyncAborted() from exc
            else:
                time.sleep(delay)


class _Run:
    """The mutable state of one run: counters, failures, the abort switch."""

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


def _execute(run: _Run, plan: Plan) -> None:
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


def _skip_record(repo: Path, reason: str, started: float, trigger: str, project: str | None = None) -> SyncRecord:
    return SyncRecord(
        time=now_iso(), project=project, repo=str(repo), result=SyncResult.SKIPPED, error=reason,
        duration_s=round(time.monotonic() - started, 3), trigger=trigger,
    )


class _HistoryJob:
    """The history upload of one run: ``prepare`` in a thread while the files sync, ``finish`` after."""

    def __init__(self, home: Path, project: str, repo: Path, commit: str, target: Target, creds: Credentials,
                 options: SyncOptions, abort: threading.Event, deadline: float) -> None:
        self.home, self.project, self.repo, self.options = home, project, repo, options
        self.target = target.sibling(locate_history(home, project, creds))
        self.attempt = lambda fn, item: with_retries(fn, item, options, abort=abort, deadline=deadline)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-history")
        self._future = self._pool.submit(
            history_mod.prepare, home, project, repo, self.target, self.attempt, head_commit=commit,
            max_bundles=options.history_max_bundles, part_bytes=options.history_part_bytes,
        )
        self._pool.shutdown(wait=False)

    def wait(self) -> None:
        """Let the thread end (its failure, if any, is ``finish``'s to report)."""
        try:
            self._future.result()
        except BaseException:  # noqa: BLE001 - reported by finish(), or moot after a fatal run
            pass

    def finish(self, manifest: manifest_mod.Manifest) -> history_mod.UploadResult:
        prepared = self._future.result()  # raises what prepare raised
        return history_mod.finish(self.home, self.project, self.repo, self.target, self.attempt, prepared,
                                  remote_files=manifest.files, files_digest=manifest_mod.digest(manifest.files))


def _sync_locked(home: Path, project: str, repo: Path, options: SyncOptions, target: Target | None,
                 started: float, trigger: str) -> SyncRecord:
    commit, subject = head_commit(repo)
    creds = read_credentials(home)
    target = target or make_target(home, project, options, creds)
    abort = threading.Event()
    deadline = time.monotonic() + options.deadline_s
    job: _HistoryJob | None = None
    if options.history and commit and locate_history(home, project, creds).kind == target.location.kind:
        # Started first: reading refs and bundling overlap with hashing the files and uploading them.
        job = _HistoryJob(home, project, repo, commit, target, creds, options, abort, deadline)
    try:
        return _sync_files(home, project, repo, options, target, started, trigger, commit, subject, job,
                           abort, deadline)
    finally:
        if job is not None:
            abort.set()  # no-op once it is done; stops its retries when the run ended early
            job.wait()


def _sync_files(home: Path, project: str, repo: Path, options: SyncOptions, target: Target, started: float,
                trigger: str, commit: str | None, subject: str | None, job: _HistoryJob | None,
                abort: threading.Event, deadline: float) -> SyncRecord:
    snap = snapshot(repo, options.max_file_bytes)
    where = target.location
    manifest = manifest_mod.load(home, project, where.identity)
    plan = make_plan(snap, manifest)
    log_line(home, f"[{project}] {(commit or '')[:8] or 'no commit'} sync started: {len(plan.uploads)} to upload, "
                   f"{len(plan.deletes)} to delete -> {where.root}")
    for skip in snap.skipped[:MAX_LISTED]:
        log_line(home, f"[{project}] skipped {skip.path}: {skip.reason}")
    if len(snap.skipped) > MAX_LISTED:
        log_line(home, f"[{project}] ... and {len(snap.skipped) - MAX_LISTED} more skipped files")

    run = _Run(home, project, repo, target, options, manifest, abort=abort, deadline=deadline)
    try:
        _execute(run, plan)
    finally:
        if plan.size or not paths.manifest_path(home, project).exists():
            manifest_mod.save(home, project, manifest)  # only what was confirmed

    for name, exc in run.failures[:MAX_LISTED]:
        if not isinstance(exc, (SyncAborted, CancelledError)):
            log_line(home, f"[{project}] could not sync {name}: {explain(exc, host=where.host)}")
    # The history goes up once the files did (it names the files' state), unless the target is unusable.
    history_text: str | None = None
    history_bytes = 0
    history_exc: BaseException | None = None
    if job is not None and run.fatal is None:
        try:
            result = job.finish(manifest)
            history_text, history_bytes = result.text, result.bytes
        except Exception as exc:  # noqa: BLE001 - recorded: the run ends "error" and is retried
            history_exc = exc
            history_text = "not uploaded"
            log_line(home, f"[{project}] could not upload the history: {explain(exc, host=where.host)}")
    pending = plan.size - run.uploaded - run.deleted
    # What stopped the run (or, when nothing did, the first file that failed) is the record's error.
    culprit = run.fatal or history_exc or (run.failures[0][1] if run.failures else None)
    if run.fatal is not None:
        error: str | None = explain(run.fatal, host=where.host)
    elif history_exc is not None:
        error = f"The files are synced but not the git history: {explain(history_exc, host=where.host)}"
    elif run.failures:
        name, exc = run.failures[0]
        n = len(run.failures)
        error = f"{n} file{'s' if n != 1 else ''} could not be synced, e.g. {name}: {explain(exc, host=where.host)}"
    else:
        error = None
    ok = error is None and pending == 0
    return SyncRecord(
        time=now_iso(), project=project, repo=str(repo), result=SyncResult.OK if ok else SyncResult.ERROR,
        commit=commit, commit_message=subject, target=where.kind, remote_path=where.root, url=where.url,
        uploaded=run.uploaded, deleted=run.deleted, skipped=len(snap.skipped), failed=len(run.failures),
        pending=pending, bytes=run.bytes, duration_s=round(time.monotonic() - started, 3),
        error=error if not ok else None,
        error_kind=cause_of(culprit) if culprit else None,
        token_hash=target.token_hash, trigger=trigger, history=history_text, history_bytes=history_bytes,
        skipped_files=[{"path": s.path, "reason": s.reason} for s in snap.skipped[:MAX_LISTED]],
        failed_files=[{"path": n, "error": explain(e, host=where.host)} for n, e in run.failures[:MAX_LISTED]],
    )


def sync_project(home: Path, repo: Path, *, options: SyncOptions | None = None, target: Target | None = None,
                 trigger: str = "hook") -> SyncRecord:
    """Mirror the repository at ``repo`` to its target; log and return the run's record.

    Never raises for sync problems: a failure is a record with ``result="error"``
    and a sentence saying what to do, because the caller is usually a detached
    hook with nobody watching its exit code.
    """
    started = time.monotonic()
    options = options or load_options(home)
    record: SyncRecord
    top = toplevel(repo) if repo.is_dir() else None
    if top is None:
        record = _skip_record(repo, f"{repo} is not a git repository", started, trigger)
    elif (project := paths.project_for(home, top)) is None:
        root = paths.projects_dir(home)
        if top.resolve() == root.resolve():
            reason = (f"{root} itself is a git repository; "
                      f"only repositories in its subfolders ({root}/<name>) are synced")
        else:
            reason = f"{top} is not under {root} (only projects there are synced)"
        record = _skip_record(top, reason, started, trigger)
    else:
        try:
            with project_turn(home, project, timeout_s=options.deadline_s + 60) as mine:
                if mine:
                    try:
                        record = _sync_locked(home, project, top, options, target, started, trigger)
                    except Exception as exc:  # noqa: BLE001 - turned into a record
                        record = _crash_record(project, top, exc, started, trigger)
                    _note_retry(home, record, options)  # still ours: no later run can be overtaken
                else:
                    record = _skip_record(
                        top, "a sync of this project is already queued; it will include this commit",
                        started, trigger, project,
                    )
        except LockTimeout:
            record = _skip_record(top, "another sync of this project is still running", started, trigger, project)
            record.result = SyncResult.ERROR
            record.error_kind = Cause.BUSY
            _note_retry(home, record, options)
        except Exception as exc:  # noqa: BLE001 - turned into a record
            record = _crash_record(project, top, exc, started, trigger)
    append_record(home, record)
    return record


def _crash_record(project: str, repo: Path, exc: BaseException, started: float, trigger: str) -> SyncRecord:
    return SyncRecord(
        time=now_iso(), project=project, repo=str(repo), result=SyncResult.ERROR, error=explain(exc),
        error_kind=cause_of(exc), duration_s=round(time.monotonic() - started, 3), trigger=trigger,
    )


def _note_retry(home: Path, record: SyncRecord, options: SyncOptions) -> None:
    try:
        retry.note(home, record, options)
    except OSError as exc:
        log_line(home, f"[{record.project}] could not update the retry queue: {exc}")


def sync_now(home: Path, project: str, trigger: str = "manual") -> SyncRecord:
    """Sync ``~/projects/<project>`` right away (the page's "Sync now" button, a retry, the commit watcher)."""
    folder = paths.projects_dir(home) / project
    if paths.project_for(home, folder) != project or not folder.is_dir():
        started = time.monotonic()
        record = _skip_record(folder, f"there is no project folder {folder}", started, trigger)
        record.result = SyncResult.ERROR
        append_record(home, record)
        retry.drop(home, project)  # nothing left to retry
        return record
    return sync_project(home, folder, trigger=trigger)


_running: set[tuple[str, str]] = set()
_running_lock = threading.Lock()


def start_sync_now(home: Path, project: str, trigger: str = "manual") -> bool:
    """Run ``sync_now`` in a background thread; False when one is already running for it here.

    The page must not block a rerun for the length of an upload; the live log
    shows progress and the result. The retry driver starts its runs here too,
    so a project never has two runs from this process.
    """
    key = (str(home), project)
    with _running_lock:
        if key in _running:
            return False
        _running.add(key)

    def work() -> None:
        try:
            sync_now(home, project, trigger)
        except Exception as exc:  # noqa: BLE001 - a thread's last word goes to the log
            log_line(home, f"[{project}] sync crashed: {type(exc).__name__}: {exc}")
        finally:
            with _running_lock:
                _running.discard(key)

    threading.Thread(target=work, name=f"sync-{trigger}-{project}", daemon=True).start()
    return True


def is_running(home: Path, project: str) -> bool:
    """Whether this process is running a "Sync now" for the project."""
    with _running_lock:
        return (str(home), project) in _running
