"""The retry queue: syncs that failed and will be tried again by themselves, kept on disk.

Every run that ends ``error`` for a cause ``errors.retry_policy`` calls
``BACKOFF`` (workspace down, 5xx, 429, timeout) leaves one entry per project
in ``~/.coda/sync/retry/<project>.json`` saying when to try next: 1 s after
the first failure, then 2, 4, 8 ... up to 5 min between attempts
(``SyncOptions.retry_first_s``/``retry_max_s``), for as long as it takes. A
``NEW_TOKEN`` cause (token refused, access denied) is not retried on a clock:
its entry remembers the token's fingerprint and becomes due when
``~/.databrickscfg`` holds a different token. A run that succeeds removes the
entry; a failure that retrying cannot fix (a file the workspace rejects)
removes it too and is left to the next commit.

The entries are files, so they outlive the app process and the detached hook
that wrote them; the app's background driver (``lib.sync.daemon``) reads them
and starts the runs. ``after_run`` and ``due`` are pure; the rest reads and
writes the files.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from lib import homefiles, statefile
from lib.sync import paths
from lib.sync.errors import Retry, retry_policy
from lib.sync.options import SyncOptions
from lib.sync.records import SyncRecord, SyncResult


class RetryKind(StrEnum):
    BACKOFF = "backoff"  # due at ``next_at``
    NEW_TOKEN = "new_token"  # due once the token differs from ``token_hash``


@dataclass(frozen=True)
class RetryEntry:
    """One project whose sync waits to be retried."""

    project: str
    kind: RetryKind
    attempts: int  # failed runs in a row
    first_failed: float  # epoch seconds
    last_failed: float
    next_at: float  # epoch seconds (BACKOFF); 0 for NEW_TOKEN
    error: str  # the last run's sentence
    cause: str | None  # the last run's ``error_kind``
    token_hash: str | None = None  # fingerprint of the token that was refused (NEW_TOKEN)
    forced: bool = False  # "Retry now" was pressed: due at once, whatever the kind

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RetryEntry | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                project=str(data["project"]), kind=RetryKind(data["kind"]), attempts=int(data["attempts"]),
                first_failed=float(data["first_failed"]), last_failed=float(data["last_failed"]),
                next_at=float(data["next_at"]), error=str(data.get("error") or ""),
                cause=data.get("cause") if isinstance(data.get("cause"), str) else None,
                token_hash=data.get("token_hash") if isinstance(data.get("token_hash"), str) else None,
                forced=bool(data.get("forced", False)),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def wait_s(self, now: float) -> float | None:
        """Seconds until the next attempt; None when it waits for a new token."""
        if self.forced:
            return 0.0
        if self.kind is RetryKind.NEW_TOKEN:
            return None
        return max(0.0, self.next_at - now)


def backoff_s(attempts: int, first_s: float, max_s: float) -> float:
    """Wait after the ``attempts``-th failure in a row: ``first_s``, doubling, capped at ``max_s``."""
    return min(max_s, first_s * 2 ** max(0, min(attempts - 1, 62)))


def after_run(previous: RetryEntry | None, record: SyncRecord, now: float, options: SyncOptions,
              token_hash: str | None = None) -> RetryEntry | None:
    """The entry after a run ended with ``record`` (None: nothing to retry)."""
    if record.result == SyncResult.OK:
        return None
    if record.result != SyncResult.ERROR or not record.project:
        return previous  # a skipped run says nothing new
    policy = retry_policy(record.error_kind)
    if policy is Retry.NONE:
        return None
    attempts = (previous.attempts if previous else 0) + 1
    first = previous.first_failed if previous else now
    if policy is Retry.NEW_TOKEN:
        return RetryEntry(record.project, RetryKind.NEW_TOKEN, attempts, first, now, 0.0, record.error or "",
                          record.error_kind, record.token_hash or token_hash)
    delay = backoff_s(attempts, options.retry_first_s, options.retry_max_s)
    return RetryEntry(record.project, RetryKind.BACKOFF, attempts, first, now, now + delay, record.error or "",
                      record.error_kind)


def due(entry: RetryEntry, now: float, token_hash: str | None) -> bool:
    """Whether to start a run for ``entry`` now (``token_hash``: the token on disk now)."""
    if entry.forced:
        return True
    if entry.kind is RetryKind.NEW_TOKEN:
        return token_hash is not None and token_hash != entry.token_hash
    return now >= entry.next_at


# ---------------------------------------------------------------- the files


def load(home: Path, project: str) -> RetryEntry | None:
    """The project's entry, or None when nothing waits to be retried."""
    return RetryEntry.from_dict(statefile.read_json(paths.retry_path(home, project), default=None))


pending_retry = load  # the name the sync page uses


def load_all(home: Path) -> list[RetryEntry]:
    folder = homefiles.sync_retry_dir(home)
    try:
        files = sorted(folder.glob("*.json"))
    except OSError:
        return []
    entries = [RetryEntry.from_dict(statefile.read_json(f, default=None)) for f in files]
    return [e for e in entries if e is not None]


def save(home: Path, entry: RetryEntry | None, project: str) -> None:
    path = paths.retry_path(home, project)
    if entry is None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return
    statefile.write_json(path, entry.to_dict())


def note(home: Path, record: SyncRecord, options: SyncOptions, now: float | None = None) -> RetryEntry | None:
    """Update the project's entry after a run (the engine calls it while still holding the project lock)."""
    if not record.project:
        return None
    previous = load(home, record.project)
    entry = after_run(previous, record, time.time() if now is None else now, options, current_token_hash(home))
    if entry != previous:
        save(home, entry, record.project)
    return entry


def mark_due(home: Path, project: str) -> bool:
    """"Retry now": make the project's entry due at once; False when it has none."""
    entry = load(home, project)
    if entry is None:
        return False
    save(home, dataclasses.replace(entry, forced=True), project)
    return True


def drop(home: Path, project: str) -> None:
    save(home, None, project)


def current_token_hash(home: Path) -> str | None:
    token = homefiles.read_databrickscfg(home).token
    return homefiles.token_fingerprint(token) if token else None
