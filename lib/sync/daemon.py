"""The app's background sync driver: retries, commits the hook cannot see, conversation backups.

One thread per HOME, started by the runtime (``start_background``) and woken
at least every ``watch_every_s``. Each turn it

- starts the runs the retry queue says are due (``lib.sync.retry``: backoff
  for transient failures, a changed token for refused ones, "Retry now");
- asks ``repowatch`` which repositories with their own ``core.hooksPath``
  committed, and syncs them;
- every ``conversations_every_s``, backs up the agents' conversation stores.

It starts nothing itself that could block it: every run goes through
``engine.start_sync_now`` (a thread per project, never two for one project
in this process), and a project whose lock another process holds (the
detached hook) is left for the next turn. Everything it acts on is on disk,
so a restarted app carries on where the last one stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from lib.sync import conversations, paths, retry
from lib.sync.credentials import read_credentials
from lib.sync.engine import is_running, start_sync_now
from lib.sync.errors import explain
from lib.sync.lock import is_busy
from lib.sync.options import load_options
from lib.sync.records import log_line
from lib.sync.repowatch import RepoWatcher

log = logging.getLogger(__name__)


class SyncDaemon:
    """Drives retries, unhooked commits and conversation backups for one HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._watcher = RepoWatcher(home)
        self._watch_due: set[str] = set()
        self._backup_at = 0.0
        self._backup_thread: threading.Thread | None = None
        self._backup_error: str | None = None
        self.turns = 0

    # -- lifecycle

    def start(self) -> SyncDaemon:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="coda-sync-daemon", daemon=True)
            self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, final_backup_s: float = 0.0) -> None:
        """Stop the loop; with ``final_backup_s`` > 0, back up the conversations once more within that time."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if final_backup_s > 0:
            self._backup(deadline_s=final_backup_s)

    # -- the loop

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = 1.0
            try:
                wait = self._turn()
            except Exception:  # the driver must outlive any one bad turn (logged with its traceback)
                log.exception("sync driver turn failed")
            self.turns += 1
            self._wake.wait(max(0.05, wait))
            self._wake.clear()

    def _turn(self) -> float:
        """One look at everything; returns how long to sleep."""
        options = load_options(self.home)
        now = time.time()
        token = retry.current_token_hash(self.home)
        wait = options.watch_every_s
        for entry in retry.load_all(self.home):
            if not (paths.projects_dir(self.home) / entry.project).is_dir():
                retry.drop(self.home, entry.project)
                continue
            if retry.due(entry, now, token):
                self._start(entry.project, "retry")
            else:
                left = entry.wait_s(now)
                if left is not None:
                    wait = min(wait, max(0.05, left))
        # A commit seen while that project's sync runs needs a run of its own afterwards (the running
        # one may have looked at the files before it): it stays due until a run starts.
        self._watch_due.update(self._watcher.poll())
        for project in sorted(self._watch_due):
            if self._start(project, "watch"):
                self._watch_due.discard(project)
        if now >= self._backup_at and not (self._backup_thread and self._backup_thread.is_alive()):
            self._backup_at = now + options.conversations_every_s
            self._backup_thread = threading.Thread(target=self._backup, name="coda-sync-agents", daemon=True)
            self._backup_thread.start()
        return wait

    def _start(self, project: str, trigger: str) -> bool:
        """Start a run unless one is going (here, or the hook's: its result updates the queue)."""
        if is_running(self.home, project) or is_busy(self.home, project):
            return False
        return start_sync_now(self.home, project, trigger)

    def _backup(self, deadline_s: float | None = None) -> None:
        creds = read_credentials(self.home)
        if not creds.workspace_ready:
            return  # a copy on the same disk would save nothing
        try:
            conversations.backup(self.home, creds=creds, deadline_s=deadline_s)
            self._backup_error = None
        except Exception as exc:  # noqa: BLE001 - logged once per distinct problem, retried next turn
            text = explain(exc, host=creds.host)
            if text != self._backup_error:
                log_line(self.home, f"[agents] could not back up the conversations: {text}")
            self._backup_error = text


_daemons: dict[str, SyncDaemon] = {}
_daemons_lock = threading.Lock()


def start_background(home: Path) -> SyncDaemon:
    """Start (once per HOME and process) the background driver; the runtime calls it at boot."""
    with _daemons_lock:
        daemon = _daemons.get(str(home))
        if daemon is None:
            daemon = _daemons[str(home)] = SyncDaemon(home)
        return daemon.start()


def stop_background(home: Path | None = None, final_backup_s: float = 5.0) -> None:
    """Stop the driver(s), backing the conversations up one last time (the runtime calls it at shutdown)."""
    with _daemons_lock:
        daemons = [d for key, d in _daemons.items() if home is None or key == str(home)]
        for d in daemons:
            _daemons.pop(str(d.home), None)
    for d in daemons:
        d.stop(final_backup_s)


def background(home: Path) -> SyncDaemon | None:
    with _daemons_lock:
        daemon = _daemons.get(str(home))
    return daemon if daemon is not None and daemon.running else None


def retry_now(home: Path, project: str) -> bool:
    """The page's "Retry now": run the project's sync at once; False when one is already running."""
    retry.mark_due(home, project)
    daemon = background(home)
    if daemon is not None:
        daemon.wake()
        return True
    return start_sync_now(home, project)
