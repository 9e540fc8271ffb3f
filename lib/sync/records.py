"""The sync history: one JSON record per run, plus a human-readable log.

``~/.coda/sync/sync-log.jsonl`` is what the sync page reads (structured);
``~/.sync.log`` is what a person tails in a terminal (one line per event).
Both are appended with a single ``write`` on an ``O_APPEND`` descriptor, so
the hook process and the app can write at the same time without tearing lines.
Both are rotated once they pass a few MiB so a busy repo cannot fill the disk.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lib.sync import paths

ROTATE_BYTES = 4 * 1024 * 1024
MAX_LISTED = 20  # skipped/failed paths kept in one record


@dataclass
class SyncRecord:
    """One sync run, as stored and as shown."""

    time: str  # ISO 8601 UTC, end of the run
    project: str | None
    repo: str
    result: str  # "ok" | "error" | "skipped"
    commit: str | None = None
    commit_message: str | None = None
    target: str | None = None  # "workspace" | "local"
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
    trigger: str = "hook"
    skipped_files: list[dict[str, str]] = field(default_factory=list)
    failed_files: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
    _append(paths.log_text(home), f"{stamp} {message}\n")


def _human_bytes(n: int) -> str:
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
    if record.result == "skipped":
        return f"[{name}] skipped: {record.error}"
    counts = (
        f"{record.uploaded} uploaded, {record.deleted} deleted, {record.skipped} skipped"
        + (f", {record.failed} failed" if record.failed else "")
        + f", {_human_bytes(record.bytes)} in {record.duration_s:.1f} s"
    )
    where = f"-> {record.remote_path}" if record.remote_path else ""
    if record.result == "ok":
        return f"[{name}] {commit} synced: {counts} {where}".rstrip()
    return f"[{name}] {commit} FAILED: {record.error} ({counts}) {where}".rstrip()


def append_record(home: Path, record: SyncRecord) -> None:
    """Store the run in both logs."""
    _append(paths.log_jsonl(home), json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    log_line(home, summary(record))


def read_records(home: Path, max_bytes: int = 2 * ROTATE_BYTES) -> list[dict[str, Any]]:
    """All readable records, oldest first (current file plus the rotated one)."""
    path = paths.log_jsonl(home)
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
        except ValueError:
            continue  # a partial first line after seeking, or a torn write
        if isinstance(obj, dict):
            records.append(obj)
    return records


def tail_text_log(home: Path, lines: int = 200) -> list[str]:
    """The last ``lines`` lines of ``~/.sync.log``."""
    try:
        with open(paths.log_text(home), "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read()
    except FileNotFoundError:
        return []
    return data.decode("utf-8", errors="replace").splitlines()[-lines:]
