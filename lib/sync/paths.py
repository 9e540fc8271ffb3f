"""Where sync keeps its state, and which project a repository belongs to.

The hook process, the app and the tests all have to agree on these locations
and on the project naming rule, so they live here and nowhere else.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

STATE_DIR = Path(".coda") / "sync"
HOOKS_DIR = Path(".coda") / "git-hooks"
MIRROR_DIR = Path(".coda") / "workspace-mirror"
LOG_JSONL = STATE_DIR / "sync-log.jsonl"
LOG_TEXT = Path(".sync.log")
OPTIONS_FILE = STATE_DIR / "options.json"
IDENTITY_FILE = Path(".coda") / "identity.json"
DATABRICKSCFG = Path(".databrickscfg")


def projects_dir(home: Path) -> Path:
    """``~/projects``: the only tree whose commits are synced."""
    return home / "projects"


def state_dir(home: Path) -> Path:
    return home / STATE_DIR


def _safe(project: str) -> str:
    # Nested projects ("group/repo") must map to one flat, unambiguous file name.
    return quote(project, safe="")


def manifest_path(home: Path, project: str) -> Path:
    return home / STATE_DIR / f"{_safe(project)}.manifest.json"


def lock_path(home: Path, project: str) -> Path:
    return home / STATE_DIR / f"{_safe(project)}.lock"


def queue_path(home: Path, project: str) -> Path:
    return home / STATE_DIR / f"{_safe(project)}.queue"


def log_jsonl(home: Path) -> Path:
    return home / LOG_JSONL


def log_text(home: Path) -> Path:
    return home / LOG_TEXT


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


def remote_root(owner: str | None, project: str) -> str:
    """Relative layout shared by both targets: ``Users/<email or local>/projects/<name>``."""
    return f"Users/{owner or 'local'}/projects/{project}"
