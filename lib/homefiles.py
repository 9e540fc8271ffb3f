"""The files in HOME that the app and the detached sync hook both use: where they are, and what is in them.

Two processes meet only through these files. The app (the Streamlit server)
creates ``~/projects``, writes ``~/.databrickscfg`` and ``~/.coda/identity.json``
and reads the sync logs. The git hook (``python -m lib.sync``, started by git,
detached from the app) reads the first three and appends to the logs. If the
two sides spelled a path or a field differently, a sync would quietly go to the
local mirror or the app would never see its result, so every such fact is
written here once and both sides import it.

Standard library only (plus ``lib.statefile``, which is too): the hook imports
this module before it detaches from ``git commit``, and must not pay for
databricks-sdk or streamlit there.
"""

from __future__ import annotations

import configparser
import hashlib
from dataclasses import dataclass
from pathlib import Path

from lib import statefile

# ---------------------------------------------------------------- the layout of HOME
# Relative to HOME; each has a function below that joins it.
PROJECTS_DIR = Path("projects")  # every git repository under it syncs
DATABRICKSCFG = Path(".databrickscfg")  # [DEFAULT] host + token; written by lib.agents.config
CODA_DIR = Path(".coda")  # the app's own state
IDENTITY_FILE = CODA_DIR / "identity.json"  # the app owner, once resolved
SYNC_STATE_DIR = CODA_DIR / "sync"  # manifests, locks, options and the record log
SYNC_RECORDS = SYNC_STATE_DIR / "sync-log.jsonl"  # one JSON record per sync run
SYNC_OPTIONS = SYNC_STATE_DIR / "options.json"  # engine tunables (lib.sync.options)
SYNC_TEXT_LOG = Path(".sync.log")  # one readable line per event, for `tail -f`
GIT_HOOKS_DIR = CODA_DIR / "git-hooks"  # the global core.hooksPath
WORKSPACE_MIRROR_DIR = CODA_DIR / "workspace-mirror"  # where sync goes without a workspace
SYNC_RETRY_DIR = SYNC_STATE_DIR / "retry"  # one JSON file per project whose sync waits to be retried


def projects_dir(home: Path) -> Path:
    """``~/projects``: where agents work and the only tree whose commits are synced."""
    return home / PROJECTS_DIR


def coda_dir(home: Path) -> Path:
    """``~/.coda``: the app's state (settings overrides, identity, sync state)."""
    return home / CODA_DIR


def databrickscfg_path(home: Path) -> Path:
    return home / DATABRICKSCFG


def identity_path(home: Path) -> Path:
    return home / IDENTITY_FILE


def sync_state_dir(home: Path) -> Path:
    return home / SYNC_STATE_DIR


def sync_records_path(home: Path) -> Path:
    """``~/.coda/sync/sync-log.jsonl``: the hook appends, the sync page and the token store read."""
    return home / SYNC_RECORDS


def sync_options_path(home: Path) -> Path:
    return home / SYNC_OPTIONS


def sync_text_log_path(home: Path) -> Path:
    return home / SYNC_TEXT_LOG


def git_hooks_dir(home: Path) -> Path:
    return home / GIT_HOOKS_DIR


def workspace_mirror_dir(home: Path) -> Path:
    return home / WORKSPACE_MIRROR_DIR


def sync_retry_dir(home: Path) -> Path:
    """``~/.coda/sync/retry/``: the sync's retry queue (``lib.sync.retry``); the sync page reads it."""
    return home / SYNC_RETRY_DIR


# ---------------------------------------------------------------- the agents' conversation stores
# What each agent CLI keeps of its conversations, relative to HOME, as glob patterns
# (``**`` = any depth). The sync backs these up to the workspace and the boot
# restore brings them back, so an agent can resume a conversation in a new
# container. Only conversation data is listed: the agents' config and login
# files (tokens) are rebuilt by the boot setup and never leave the machine.
# OpenCode 1.x keeps everything in one SQLite database, which also holds
# login tables; it is copied with those tables emptied (``lib.sync.conversations``).


@dataclass(frozen=True)
class ConversationStore:
    agent: str
    patterns: tuple[str, ...]  # relative to HOME
    sqlite: tuple[str, ...] = ()  # SQLite databases (relative to HOME), copied consistently
    secret_tables: tuple[str, ...] = ()  # tables of those databases that hold credentials: emptied in the copy


CONVERSATION_STORES: tuple[ConversationStore, ...] = (
    ConversationStore("claude", (".claude/projects/**",)),
    ConversationStore("codex", (".codex/sessions/**", ".codex/archived_sessions/**", ".codex/session_index.jsonl")),
    # Gemini CLI 0.61: ~/.gemini/tmp/<project slug>/chats/session-*.json(l); the slug's
    # owner is in .project_root there, and projects.json maps folders to slugs.
    ConversationStore("gemini", (".gemini/tmp/*/chats/**", ".gemini/tmp/*/.project_root", ".gemini/projects.json")),
    # OpenCode: 1.x keeps sessions in opencode.db; older versions in storage/ (JSON files).
    ConversationStore(
        "opencode",
        (".local/share/opencode/storage/**",),
        sqlite=(".local/share/opencode/opencode.db",),
        secret_tables=("account", "account_state", "control_account", "credential", "session_share"),
    ),
)


# ---------------------------------------------------------------- tokens


def clean_token(raw: str | None) -> str | None:
    """A token with all whitespace removed, or None when nothing is left.

    A pasted token, a secret scope's value and a hand-edited config file all
    tend to carry a trailing newline; every reader cleans the same way, so the
    token the app checks is the token the hook sends.
    """
    token = "".join((raw or "").split())
    return token or None


def token_fingerprint(token: str) -> str:
    """A short, one-way name for a token, safe to write to a log.

    The sync records which token it presented; the app compares fingerprints
    to tell whether a refusal concerns the token it is using now. A personal
    access token is long and random, so the digest reveals nothing usable.
    """
    return hashlib.sha256(b"coda token fingerprint\0" + token.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- ~/.databrickscfg


@dataclass(frozen=True)
class DatabricksProfile:
    """The ``[DEFAULT]`` profile of ``~/.databrickscfg``; either field may be missing.

    ``host`` is as written (callers normalise it with ``lib.settings.normalize_host``);
    ``token`` is cleaned with ``clean_token``.
    """

    host: str | None = None
    token: str | None = None


def read_databrickscfg(home: Path) -> DatabricksProfile:
    """The ``[DEFAULT]`` host and token; an empty profile when the file is missing or unreadable."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(databrickscfg_path(home).read_text())
    except (OSError, configparser.Error, UnicodeDecodeError):
        return DatabricksProfile()
    section = parser.defaults()
    return DatabricksProfile(host=(section.get("host") or "").strip() or None, token=clean_token(section.get("token")))


# ---------------------------------------------------------------- ~/.coda/identity.json


def write_identity(home: Path, *, owner: str, display_name: str | None, source: str | None,
                   resolved_at: float | None) -> None:
    """Record the resolved app owner (atomically: the hook may read it at any moment)."""
    statefile.write_json(
        identity_path(home),
        {"owner": owner, "display_name": display_name, "source": source, "resolved_at": resolved_at},
    )


def read_owner(home: Path) -> str | None:
    """The app owner's email as the app last resolved it; None before that."""
    data = statefile.read_json(identity_path(home), default=None)
    owner = data.get("owner") if isinstance(data, dict) else None
    return owner.strip() if isinstance(owner, str) and owner.strip() else None
