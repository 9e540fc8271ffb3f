"""The sync's read side: what the page shows, and what the app learns from past runs.

Everything here is derived from what the write side already defines: runs are
``SyncRecord``s read back with ``SyncRecord.from_dict``, places come from
``targets.locate``. So the page cannot disagree with the engine about a field
or about where a project goes. The page only draws what these functions
return; the choices (which runs count, what to warn about) are made here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from lib.sync import paths, retry
from lib.sync.credentials import read_credentials
from lib.sync.errors import Cause
from lib.sync.records import SyncRecord, SyncResult, read_records
from lib.sync.retry import RetryEntry
from lib.sync.targets import Location, locate

# The token check runs on every page load; the newest runs are at the end of the log.
_TOKEN_CHECK_BYTES = 256 * 1024


@dataclass(frozen=True)
class ProjectStatus:
    """One project: where its next sync goes and how its latest run ended."""

    project: str
    folder: str
    location: Location  # where the next sync goes
    last: SyncRecord | None = None  # latest run that did something; None: never synced
    last_ok_time: str | None = None
    retry: RetryEntry | None = None  # waiting to be retried (by itself, or once the token changes)

    @property
    def problem(self) -> str | None:
        """What the user must know about the latest run, or None when it went well."""
        last = self.last
        if last is None or last.result != SyncResult.ERROR or not last.error:
            return None
        waiting = f" {last.pending} changes are still waiting to be uploaded." if last.pending else ""
        return last.error + waiting


class DestinationState(StrEnum):
    """Why commits go where they go right now."""

    WORKSPACE = "workspace"  # host, token and owner known: the workspace
    NO_TOKEN = "no_token"  # the owner is known but not the token (or host): the local mirror
    NO_OWNER = "no_owner"  # the owner is not resolved yet: the local mirror


@dataclass(frozen=True)
class Destination:
    """Where the next commit of any project uploads to, as the sync would decide it now."""

    state: DestinationState
    host: str | None
    owner: str | None


def destination(home: Path) -> Destination:
    creds = read_credentials(home)
    if creds.workspace_ready:
        state = DestinationState.WORKSPACE
    elif creds.owner:
        state = DestinationState.NO_TOKEN
    else:
        state = DestinationState.NO_OWNER
    return Destination(state, creds.host, creds.owner)


def recent_records(home: Path, limit: int = 50) -> list[SyncRecord]:
    """The newest ``limit`` sync records, newest first."""
    records = read_records(home)
    return list(reversed(records[-limit:])) if limit > 0 else []


def history(home: Path, limit: int = 30) -> list[SyncRecord]:
    """The newest ``limit`` runs that synced something or failed, newest first.

    Skipped runs (not a project, coalesced into a queued sync) are left out:
    they moved nothing and would only push real runs off the chart.
    """
    runs = [r for r in read_records(home) if r.result != SyncResult.SKIPPED]
    return list(reversed(runs[-limit:])) if limit > 0 else []


def project_status(home: Path, folders: Iterable[str]) -> list[ProjectStatus]:
    """One row per project folder, plus removed folders that were once synced, by name.

    ``folders`` are the projects in ``~/projects`` as ``lib.projects.list_projects``
    lists them (the one definition of what counts as a project folder).
    """
    last: dict[str, SyncRecord] = {}
    last_ok: dict[str, str] = {}
    once_synced: set[str] = set()
    for rec in read_records(home):
        if not rec.project or rec.result == SyncResult.SKIPPED:
            continue  # a coalesced run says nothing about the project's state
        last[rec.project] = rec
        if rec.target:
            once_synced.add(rec.project)
        if rec.result == SyncResult.OK:
            last_ok[rec.project] = rec.time
    creds = read_credentials(home)
    waiting = {e.project: e for e in retry.load_all(home)}
    return [
        ProjectStatus(
            project=name,
            folder=str(paths.projects_dir(home) / name),
            location=locate(home, name, creds),
            last=last.get(name),
            last_ok_time=last_ok.get(name),
            retry=waiting.get(name),
        )
        for name in sorted(set(folders) | once_synced | set(waiting))
    ]


def refused_token(home: Path) -> str | None:
    """The fingerprint of the token the workspace refused in the latest sync that presented one.

    None when that sync got through with its token (or no sync has presented
    one). The app compares it with ``homefiles.token_fingerprint`` of the token
    it uses: the sync may have run with an older token from ``~/.databrickscfg``.
    """
    for rec in reversed(read_records(home, max_bytes=_TOKEN_CHECK_BYTES)):
        if rec.token_hash:
            return rec.token_hash if rec.error_kind == Cause.TOKEN_REJECTED else None
    return None
