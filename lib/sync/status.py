"""Read-side helpers for the sync page: recent runs and one status row per project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.sync import paths
from lib.sync.credentials import read_credentials
from lib.sync.records import read_records
from lib.sync.targets import describe_target


@dataclass(frozen=True)
class ProjectStatus:
    """The latest known state of one project's sync."""

    project: str
    folder: str
    target: str  # "workspace" | "local": where the next sync goes
    remote_path: str
    url: str  # workspace link ``{host}/#workspace{remote_path}``, or a file:// URL
    last_time: str | None = None
    commit: str | None = None
    commit_message: str | None = None
    result: str | None = None  # None: never synced
    uploaded: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    pending: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    error: str | None = None
    last_ok_time: str | None = None


def recent_records(home: Path, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` sync records, newest first."""
    records = read_records(home)
    return list(reversed(records[-limit:])) if limit > 0 else []


def _project_folders(home: Path) -> list[str]:
    root = paths.projects_dir(home)
    try:
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def project_status(home: Path) -> list[ProjectStatus]:
    """One row per project folder in ``~/projects``, plus removed folders that were once synced, by name."""
    last: dict[str, dict[str, Any]] = {}
    last_ok: dict[str, str] = {}
    once_synced: set[str] = set()
    for rec in read_records(home):
        name = rec.get("project")
        if not isinstance(name, str) or not name or rec.get("result") == "skipped":
            continue  # a coalesced run says nothing about the project's state
        last[name] = rec
        if rec.get("target"):
            once_synced.add(name)
        if rec.get("result") == "ok":
            last_ok[name] = rec.get("time") or ""
    creds = read_credentials(home)
    rows = []
    for name in sorted(set(_project_folders(home)) | once_synced):
        kind, root, url = describe_target(home, name, creds)
        rec = last.get(name, {})
        if rec.get("remote_path") and rec.get("target") == kind and rec.get("remote_path") == root:
            url = rec.get("url") or url
        rows.append(
            ProjectStatus(
                project=name,
                folder=str(paths.projects_dir(home) / name),
                target=kind,
                remote_path=root,
                url=url,
                last_time=rec.get("time"),
                commit=rec.get("commit"),
                commit_message=rec.get("commit_message"),
                result=rec.get("result"),
                uploaded=int(rec.get("uploaded") or 0),
                deleted=int(rec.get("deleted") or 0),
                skipped=int(rec.get("skipped") or 0),
                failed=int(rec.get("failed") or 0),
                pending=int(rec.get("pending") or 0),
                bytes=int(rec.get("bytes") or 0),
                duration_s=float(rec.get("duration_s") or 0.0),
                error=rec.get("error"),
                last_ok_time=last_ok.get(name),
            )
        )
    return rows
