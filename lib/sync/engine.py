"""Make a target hold exactly a project's current files, sending only what changed.

One run: take the project lock, snapshot the worktree (git's file list +
sha256), diff it against the manifest of what the target is known to hold
(``plan``), then carry the plan out (``transfer``: delete, prune folders,
create folders and upload, in parallel with a bound, retrying transient
failures with backoff). Alongside, the project's git history goes to its own
folder (``githistory.prepare`` in a thread from the start, ``finish`` once
the files are confirmed). Every run, even a skipped one, ends as one
``SyncRecord``; a failed one also leaves an entry in the retry queue
(``retry.note``, still under the project lock), which the app's background
driver acts on.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor
from pathlib import Path

from lib.sync import githistory as history_mod
from lib.sync import manifest as manifest_mod
from lib.sync import paths, retry
from lib.sync.backoff import with_retries
from lib.sync.credentials import Credentials, read_credentials
from lib.sync.errors import Cause, SyncAborted, cause_of, explain
from lib.sync.gitfiles import head_commit, snapshot, toplevel
from lib.sync.lock import LockTimeout, project_turn
from lib.sync.options import SyncOptions, load_options
from lib.sync.plan import make_plan
from lib.sync.records import MAX_LISTED, SyncRecord, SyncResult, append_record, log_line, now_iso
from lib.sync.targets import Target, locate_history, make_target
from lib.sync.transfer import Transfer, execute


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

    run = Transfer(home, project, repo, target, options, manifest, abort=abort, deadline=deadline)
    try:
        execute(run, plan)
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
