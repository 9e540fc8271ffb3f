"""The sync history: one JSON record per run, plus a human-readable log.

``~/.coda/sync/sync-log.jsonl`` is what the sync page and the app's token
store read (structured); ``~/.sync.log`` is what a person tails in a terminal
(one line per event). Both are appended with a single ``write`` on an
``O_APPEND`` descriptor, so the hook process and the app can write at the same
time without tearing lines. Both are rotated once they pass a few MiB so a
busy repo cannot fill the disk.

``SyncRecord`` is the one definition of a record: the engine writes it with
``to_dict`` and every reader gets it back with ``from_dict``, so a field added
here reaches the page without being copied anywhere.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from lib import homefiles

ROTATE_BYTES = 4 * 1024 * 1024
MAX_LISTED = 20  # skipped/failed paths kept in one record


class SyncResult(StrEnum):
    """How a run ended; stored as its plain string value."""

    OK = "ok"  # the target equals the worktree
    ERROR = "error"  # something is still to do (``pending``), or nothing could start
    SKIPPED = "skipped"  # not a project, or coalesced into a sync already queued


@dataclass
class SyncRecord:
    """One sync run, as stored and as shown."""

    time: str  # ISO 8601 UTC, end of the run
    project: str | None
    repo: str
    result: SyncResult
    commit: str | None = None
    commit_message: str | None = None
    target: str | None = None  # lib.sync.targets.TargetKind: "workspace" | "local"
    remote_path: str | None = None
    url: str | None = None
    uploaded: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    pending: int = 0  # changes still to do after this run (retried by the next)
    bytes: int = 0
    duration_s: float = 0.0
    error: str | None = None
    error_kind: str | None = None  # lib.sync.errors.Cause of ``error``
    token_hash: str | None = None  # homefiles.token_fingerprint of the token the run presented, if any
    trigger: str = "hook"  # hook | manual | retry | watch (a commit the hook could not see)
    history: str | None = None  # what the run did to the history in the workspace, in words
    history_bytes: int = 0  # bytes of git bundles it uploaded
    skipped_files: list[dict[str, str]] = field(default_factory=list)
    failed_files: list[dict[str, str]] = field(default_factory=list)

    @property
    def files_changed(self) -> int:
        """Files uploaded plus files deleted."""
        return self.uploaded + self.deleted

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyncRecord:
        """The record a log line holds.

        Unknown keys are ignored and a missing or mistyped optional field gets
        its default, so an older or newer app version's lines still read.
        Raises ``ValueError`` when ``time`` or ``result`` is unusable: such a
        line says nothing about any run.
        """
        values: dict[str, Any] = {}
        for name, read in _READERS.items():
            if name not in data:
                continue
            try:
                values[name] = read(data[name])
            except (TypeError, ValueError):
                continue
        if not values.get("time") or "result" not in values:
            raise ValueError("not a sync record")
        values.setdefault("project", None)
        values.setdefault("repo", "")
        return cls(**values)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _listed(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise TypeError(value)
    return [{str(k): str(v) for k, v in item.items()} for item in value if isinstance(item, dict)]


# How to read each field back, by its annotation; derived from the dataclass so
# that a new field without a reader fails at import, not in a user's page.
_READ_BY_TYPE: dict[str, Callable[[Any], Any]] = {
    "str": _text,
    "str | None": _optional_text,
    "int": int,
    "float": float,
    "SyncResult": SyncResult,
    "list[dict[str, str]]": _listed,
}
_READERS: dict[str, Callable[[Any], Any]] = {f.name: _READ_BY_TYPE[str(f.type)] for f in dataclasses.fields(SyncRecord)}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _rotate_if_big(path: Path) -> None:
    try:
        if path.stat().st_size > ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _rotate_if_big(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode("utf-8", errors="replace"))
    finally:
        os.close(fd)


def log_line(home: Path, message: str) -> None:
    """One timestamped line in ``~/.sync.log``."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    _append(homefiles.sync_text_log_path(home), f"{stamp} {message}\n")


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def summary(record: SyncRecord) -> str:
    """The readable line for a finished run."""
    name = record.project or record.repo
    commit = (record.commit or "")[:8] or "no commit"
    if record.result == SyncResult.SKIPPED:
        return f"[{name}] skipped: {record.error}"
    counts = (
        f"{record.uploaded} uploaded, {record.deleted} deleted, {record.skipped} skipped"
        + (f", {record.failed} failed" if record.failed else "")
        + f", {human_bytes(record.bytes)} in {record.duration_s:.1f} s"
    )
    if record.history:
        counts += f"; history: {record.history}"
    where = f"-> {record.remote_path}" if record.remote_path else ""
    if record.result == SyncResult.OK:
        return f"[{name}] {commit} synced: {counts} {where}".rstrip()
    return f"[{name}] {commit} FAILED: {record.error} ({counts}) {where}".rstrip()


def append_record(home: Path, record: SyncRecord) -> None:
    """Store the run in both logs."""
    _append(homefiles.sync_records_path(home), json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    log_line(home, summary(record))


def read_records(home: Path, max_bytes: int = 2 * ROTATE_BYTES) -> list[SyncRecord]:
    """The readable records in the last ``max_bytes`` of the current and the rotated log, oldest first."""
    path = homefiles.sync_records_path(home)
    chunks: list[bytes] = []
    for candidate in (path.with_name(path.name + ".1"), path):
        try:
            with open(candidate, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                chunks.append(f.read())
        except FileNotFoundError:
            continue
    records = []
    for line in b"\n".join(chunks).splitlines():
        try:
            obj = json.loads(line)
            if isinstance(obj, dict):
                records.append(SyncRecord.from_dict(obj))
        except ValueError:
            continue  # a partial first line after seeking, a torn write, or not a record
    return records


def tail_text_log(home: Path, lines: int = 200) -> list[str]:
    """The last ``lines`` lines of ``~/.sync.log``."""
    try:
        with open(homefiles.sync_text_log_path(home), "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read()
    except FileNotFoundError:
        return []
    return data.decode("utf-8", errors="replace").splitlines()[-lines:]
