"""Sync's own per-project state files, and which project a repository belongs to.

The hook process, the app and the tests all have to agree on these names and
on the project naming rule, so they live here and nowhere else. The files the
sync shares with the rest of the app (``~/projects``, the logs, the
credentials) are laid out in ``lib.homefiles``; this module only adds what
is derived per project.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from lib.homefiles import projects_dir, sync_retry_dir, sync_state_dir

__all__ = [
    "AGENTS_KEY",
    "agents_root",
    "history_root",
    "history_state_path",
    "lock_path",
    "manifest_path",
    "project_for",
    "projects_dir",
    "queue_path",
    "remote_root",
    "retry_path",
    "scratch_dir",
    "user_root",
]

# The lock/manifest key of the agents' conversation backup: no project can be
# called that (a project name is a relative path, never starting with "/").
AGENTS_KEY = "/agents"


def _safe(project: str) -> str:
    # Nested projects ("group/repo") must map to one flat, unambiguous file name.
    return quote(project, safe="")


def manifest_path(home: Path, project: str) -> Path:
    return sync_state_dir(home) / f"{_safe(project)}.manifest.json"


def lock_path(home: Path, project: str) -> Path:
    return sync_state_dir(home) / f"{_safe(project)}.lock"


def queue_path(home: Path, project: str) -> Path:
    return sync_state_dir(home) / f"{_safe(project)}.queue"


def history_state_path(home: Path, project: str) -> Path:
    """What the history folder in the workspace holds for ``project`` (a copy of its ``history.json``)."""
    return sync_state_dir(home) / f"{_safe(project)}.history.json"


def retry_path(home: Path, project: str) -> Path:
    """The project's entry in the retry queue (present only while a sync waits to be retried)."""
    return sync_retry_dir(home) / f"{_safe(project)}.json"


def scratch_dir(home: Path) -> Path:
    """Temporary files of the sync (bundles being made, database copies); safe to delete when idle."""
    return sync_state_dir(home) / "tmp"


def project_for(home: Path, repo: Path) -> str | None:
    """The project name of ``repo`` (a worktree root), or None when it is not under ``~/projects``.

    Both sides are resolved, so a symlinked ``~/projects`` or a repository
    reached through a symlink counts by where it really is. A repository nested
    deeper (``~/projects/group/repo``) is its own project, ``group/repo``.
    """
    try:
        root = projects_dir(home).resolve(strict=True)
        real = repo.resolve(strict=True)
    except (FileNotFoundError, RuntimeError, OSError):
        return None
    try:
        rel = real.relative_to(root)
    except ValueError:
        return None
    if not rel.parts or any(part in ("", ".", "..") for part in rel.parts):
        return None
    return rel.as_posix()


def user_root(owner: str | None) -> str:
    """The user's folder, relative to the workspace root: ``Users/<email or local>``."""
    return f"Users/{owner or 'local'}"


def remote_root(owner: str | None, project: str) -> str:
    """Relative layout shared by both targets: ``Users/<email or local>/projects/<name>``."""
    return f"{user_root(owner)}/projects/{project}"


def history_root(owner: str | None, project: str) -> str:
    """``Users/<email>/.coda/history/<name>``: the project's git history (bundles + ``history.json``).

    Outside the project folder on purpose: the synced folder stays exactly the
    project's files, and the history is no clutter a user browses past.
    """
    return f"{user_root(owner)}/.coda/history/{project}"


def agents_root(owner: str | None) -> str:
    """``Users/<email>/.coda/agents``: the agents' conversation stores, by their path under HOME."""
    return f"{user_root(owner)}/.coda/agents"
