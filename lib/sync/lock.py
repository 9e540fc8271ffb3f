"""One sync per project at a time, across processes.

The hook runs in its own detached process and "Sync now" in the app's, so a
thread lock is not enough: an ``fcntl`` lock on a file under
``~/.coda/sync/`` is. The kernel drops it when the holder dies, so a killed
sync never leaves the project locked.

A burst of commits must not pile up one waiting process per commit: at most
one sync waits behind the running one (``project_turn``). It has not looked at
the files yet, so it will include every commit that arrives while it waits,
and those later commits' syncs can stop at once.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lib.sync import paths


class LockTimeout(Exception):
    """Another sync of the same project held the lock for too long."""


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def project_turn(home: Path, project: str, timeout_s: float) -> Iterator[bool]:
    """Yield True while this process holds the project lock; False (at once) when
    another sync is already queued and will pick up the current state."""
    queue = paths.queue_path(home, project)
    queue.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(queue, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not _try_lock(fd):
            yield False
            return
        with project_lock(home, project, timeout_s):
            fcntl.flock(fd, fcntl.LOCK_UN)  # we snapshot next: a newer commit must queue behind us
            yield True
    finally:
        os.close(fd)


@contextmanager
def project_lock(home: Path, project: str, timeout_s: float) -> Iterator[None]:
    """Hold the project's lock; wait for it at most ``timeout_s`` seconds."""
    path = paths.lock_path(home, project)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(project) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_busy(home: Path, project: str) -> bool:
    """Whether some process (the detached hook, say) is syncing the project right now."""
    path = paths.lock_path(home, project)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        if not _try_lock(fd):
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
