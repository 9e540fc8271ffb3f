"""Tell the sync page when the sync logs change, without polling the files.

A watchdog ``Observer`` watches ``~/.coda/sync/`` and ``~`` (for
``~/.sync.log``) and bumps a counter on any change to a log file. The page
keeps one ``LogWatcher`` per home for the whole server and re-renders its
fragment only when ``version`` moved, so an idle page costs nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from lib import homefiles

_WRITE_EVENTS = {"created", "modified", "moved", "deleted", "closed"}


class LogWatcher(FileSystemEventHandler):
    """A change counter for the two sync log files."""

    def __init__(self, home: Path) -> None:
        super().__init__()
        self.home = home
        self._logs = (homefiles.sync_records_path(home), homefiles.sync_text_log_path(home))
        self._names = {log.name for log in self._logs}
        self._lock = threading.Lock()
        self._version = 0
        self._observer: Observer | None = None

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def bump(self) -> None:
        with self._lock:
            self._version += 1

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Reading a log (the page itself does) raises "opened"/"closed_no_write" on
        # Linux: counting those would make the page rerun itself forever.
        if event.event_type not in _WRITE_EVENTS:
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            name = Path(raw if isinstance(raw, str) else raw.decode(errors="replace")).name if raw else ""
            if name in self._names or name.startswith(tuple(n + "." for n in self._names)):
                self.bump()
                return

    def start(self) -> LogWatcher:
        """Start watching (idempotent); creates the logs' folders so there is something to watch."""
        if self._observer is not None:
            return self
        observer = Observer()
        observer.daemon = True
        for folder in sorted({log.parent for log in self._logs}):
            folder.mkdir(parents=True, exist_ok=True)
            observer.schedule(self, str(folder), recursive=False)
        observer.start()
        self._observer = observer
        return self

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None


_watchers: dict[str, LogWatcher] = {}
_watchers_lock = threading.Lock()


def log_watcher(home: Path) -> LogWatcher:
    """The process-wide watcher for ``home``; held at module level so a cache clear cannot lose it."""
    key = str(home)
    with _watchers_lock:
        watcher = _watchers.get(key)
        if watcher is None:
            watcher = _watchers[key] = LogWatcher(home).start()
        return watcher
