"""The agents' own conversation stores, backed up to the workspace and restored at boot.

So that "Resume" works in a new container, what each CLI keeps of its
conversations (``homefiles.CONVERSATION_STORES``: ``~/.claude/projects``,
``~/.codex/sessions``, Gemini's ``~/.gemini/tmp/*/chats``, OpenCode's
database) goes to ``/Workspace/Users/<you>/.coda/agents/<the same path under
HOME>``. The app's background driver calls ``backup`` every
``conversations_every_s`` and at shutdown; only files whose size or mtime
moved are read, and only those whose content changed are sent. A file bigger
than ``history_part_bytes`` is stored as ``<path>.coda-part-000``, ``-001``...

Never a credential:

- only conversation data is listed; the agents' config and login files (which
  hold tokens) are written again by the boot setup and never leave the machine;
- every file is scanned for the workspace token and anything shaped like a
  Databricks token, replaced by as many ``*`` (same length, so JSON and SQLite
  stay readable);
- OpenCode's SQLite database is copied consistently (the backup API, while
  OpenCode may be writing) and its login tables are emptied and vacuumed in
  the copy.

``restore`` writes back every file HOME does not have (never overwriting) and
only to paths a store pattern allows, whatever the workspace folder holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib import homefiles, statefile
from lib.homefiles import CONVERSATION_STORES
from lib.sync import paths
from lib.sync.backoff import with_retries
from lib.sync.credentials import Credentials, read_credentials
from lib.sync.lock import project_lock
from lib.sync.options import SyncOptions, load_options
from lib.sync.records import human_bytes, log_line
from lib.sync.targets import Target, locate_agents, target_at, walk

PART = ".coda-part-"
_PART_NAME = re.compile(r"^(.*)\.coda-part-(\d{3})$")
# Databricks personal access tokens and service principal secrets.
_TOKEN_SHAPES = re.compile(rb"dapi[0-9a-f]{32}(?:-\d+)?|dose[0-9a-f]{32}")
LOCK_TIMEOUT_S = 120.0


# ---------------------------------------------------------------- which files


def _regex(pattern: str) -> re.Pattern[str]:
    """A HOME-relative glob (``*`` one name, ``**/`` any folders) as a regex over posix paths."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _root(pattern: str) -> str:
    """The literal folder a pattern starts in (``.claude/projects/**`` -> ``.claude/projects``)."""
    parts = pattern.split("/")
    fixed = []
    for part in parts[:-1]:
        if "*" in part:
            break
        fixed.append(part)
    return "/".join(fixed)


_GLOBS = [(_regex(p + "/*" if p.endswith("**") else p), _root(p)) for s in CONVERSATION_STORES
          for p in s.patterns if "*" in p]
_FILES = {p for s in CONVERSATION_STORES for p in s.patterns if "*" not in p}
_SQLITE = {rel: store for store in CONVERSATION_STORES for rel in store.sqlite}


def allowed(rel: str) -> bool:
    """Whether ``rel`` (relative to HOME) is part of a conversation store."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or ".." in parts or "" in parts:
        return False
    return rel in _SQLITE or rel in _FILES or any(rx.match(rel) for rx, _ in _GLOBS)


def collect(home: Path) -> dict[str, Path]:
    """Every conversation file in HOME: path relative to HOME -> file (symbolic links left out)."""
    found: dict[str, Path] = {}
    for root in sorted({r for _, r in _GLOBS}):
        for folder, dirs, files in os.walk(home / root):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
            for name in files:
                full = Path(folder) / name
                rel = full.relative_to(home).as_posix()
                if rel not in _SQLITE and not full.is_symlink() and allowed(rel):
                    found[rel] = full
    for rel in sorted(_FILES | set(_SQLITE)):
        full = home / rel
        if full.is_file() and not full.is_symlink():
            found[rel] = full
    return found


# ---------------------------------------------------------------- never a credential


def secrets(home: Path) -> list[bytes]:
    """Credentials known here that must never be uploaded, even inside a transcript."""
    token = homefiles.read_databrickscfg(home).token
    return [token.encode()] if token and len(token) >= 8 else []


def mask(data: bytes, known: list[bytes]) -> bytes:
    """``data`` with every known secret and token-shaped string replaced by as many ``*``."""
    for secret in known:
        if secret in data:
            data = data.replace(secret, b"*" * len(secret))
    return _TOKEN_SHAPES.sub(lambda m: b"*" * len(m.group()), data)


def _sqlite_copy(src: Path, dest: Path, secret_tables: tuple[str, ...]) -> bytes:
    """A consistent copy of a live SQLite database with ``secret_tables`` emptied and the space wiped."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{dest}{suffix}")
    try:
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=10)
        source.execute("select count(*) from sqlite_master").fetchone()
    except sqlite3.Error:
        source = sqlite3.connect(str(src), timeout=10)
    try:
        copy = sqlite3.connect(str(dest))
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.execute("PRAGMA secure_delete=ON")
            tables = {r[0] for r in copy.execute("select name from sqlite_master where type='table'")}
            for table in secret_tables:
                if table in tables:
                    copy.execute(f'DELETE FROM "{table}"')
            copy.commit()
            copy.execute("VACUUM")
        finally:
            copy.close()
    finally:
        source.close()
    return dest.read_bytes()


# ---------------------------------------------------------------- the local bookkeeping


def _manifest_path(home: Path) -> Path:
    return homefiles.sync_state_dir(home) / "agents.manifest.json"


def _cache_path(home: Path) -> Path:
    return homefiles.sync_state_dir(home) / "agents.cache.json"


def _load(path: Path, target: str | None = None) -> dict[str, Any]:
    data = statefile.read_json(path, default=None)
    if not isinstance(data, dict) or (target is not None and data.get("target") != target):
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _save(path: Path, files: dict[str, Any], target: str | None = None) -> None:
    statefile.atomic_write(path, json.dumps({"target": target, "files": files}, separators=(",", ":")).encode())


def _signature(path: Path, rel: str) -> list[int] | None:
    sig: list[int] = []
    for suffix in ("", "-wal") if rel in _SQLITE else ("",):
        try:
            st = os.stat(f"{path}{suffix}")
            sig += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            if not suffix:
                return None
            sig += [0, 0]
    return sig


def remote_names(rel: str, parts: int) -> list[str]:
    return [rel] if parts <= 1 else [f"{rel}{PART}{i:03d}" for i in range(parts)]


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    if len(data) <= size:
        yield data
        return
    for i in range(0, len(data), size):
        yield data[i:i + size]


# ---------------------------------------------------------------- backup


@dataclass
class BackupResult:
    uploaded: int = 0
    deleted: int = 0
    bytes: int = 0
    files: int = 0  # conversation files seen
    error: str | None = None
    skipped: list[str] = field(default_factory=list)


def _target(home: Path, creds: Credentials, options: SyncOptions) -> Target:
    return target_at(locate_agents(home, creds), creds, options)


def backup(home: Path, *, options: SyncOptions | None = None, creds: Credentials | None = None,
           deadline_s: float | None = None) -> BackupResult:
    """Send what changed in the conversation stores since the last backup. Raises on a target failure."""
    options = options or load_options(home)
    creds = creds or read_credentials(home)
    target = _target(home, creds, options)
    identity = target.location.identity
    deadline = time.monotonic() + deadline_s if deadline_s else None
    result = BackupResult()
    with project_lock(home, paths.AGENTS_KEY, LOCK_TIMEOUT_S):
        manifest = _load(_manifest_path(home), identity)
        cache = _load(_cache_path(home))
        files = collect(home)
        result.files = len(files)
        known = secrets(home)
        scratch = paths.scratch_dir(home) / "agents"
        lock = threading.Lock()
        failures: list[BaseException] = []

        def send(rel: str, data: bytes, sha: str) -> None:
            parts = max(1, -(-len(data) // options.history_part_bytes))
            names = remote_names(rel, parts)
            for name, chunk in zip(names, _chunks(data, options.history_part_bytes), strict=True):
                with_retries(lambda item: target.upload(*item), (name, chunk), options, deadline=deadline)
            old = manifest.get(rel)
            stale = set(remote_names(rel, int(old.get("parts", 1)))) - set(names) if isinstance(old, dict) else set()
            for name in stale:
                with_retries(target.delete, name, options, deadline=deadline)
            with lock:
                manifest[rel] = {"sha256": sha, "size": len(data), "parts": parts}
                result.uploaded += 1
                result.bytes += len(data)

        def remove(rel: str) -> None:
            old = manifest.get(rel) or {}
            for name in remote_names(rel, int(old.get("parts", 1))):
                with_retries(target.delete, name, options, deadline=deadline)
            with lock:
                manifest.pop(rel, None)
                result.deleted += 1

        try:
            with ThreadPoolExecutor(max_workers=max(1, options.workers), thread_name_prefix="sync-agents") as pool:
                pending: list[Future] = []
                window = threading.Semaphore(max(1, options.workers) * 2)  # bounds the data held in memory
                for rel, full in sorted(files.items()):
                    if failures:
                        break
                    sig = _signature(full, rel)
                    cached = cache.get(rel)
                    if sig is None:
                        continue
                    if isinstance(cached, dict) and cached.get("sig") == sig:
                        if (manifest.get(rel) or {}).get("sha256") == cached.get("sha256"):
                            continue
                    try:
                        if rel in _SQLITE:
                            raw = _sqlite_copy(full, scratch / rel, _SQLITE[rel].secret_tables)
                        else:
                            raw = full.read_bytes()
                    except (OSError, sqlite3.Error) as exc:
                        result.skipped.append(f"{rel}: {exc}")
                        continue
                    data = mask(raw, known)
                    sha = hashlib.sha256(data).hexdigest()
                    cache[rel] = {"sig": sig, "sha256": sha, "size": len(data)}
                    if (manifest.get(rel) or {}).get("sha256") == sha:
                        continue
                    window.acquire()

                    def job(rel: str = rel, data: bytes = data, sha: str = sha) -> None:
                        try:
                            send(rel, data, sha)
                        except BaseException as exc:  # noqa: BLE001 - raised once, after the pool
                            failures.append(exc)
                        finally:
                            window.release()

                    pending.append(pool.submit(job))
                if not failures:
                    for rel in sorted(set(manifest) - set(files)):
                        pending.append(pool.submit(lambda rel=rel: _guard(remove, rel, failures)))
                for fut in pending:
                    fut.result()
        finally:
            for rel in set(cache) - set(files):
                cache.pop(rel, None)
            _save(_manifest_path(home), manifest, identity)
            _save(_cache_path(home), cache)
    if failures:
        raise failures[0]
    if result.uploaded or result.deleted:
        log_line(home, f"[agents] conversations backed up: {result.uploaded} sent, {result.deleted} removed "
                       f"({human_bytes(result.bytes)})")
    return result


def _guard(fn: Any, arg: Any, failures: list[BaseException]) -> None:
    try:
        fn(arg)
    except BaseException as exc:  # noqa: BLE001 - collected, raised once by the caller
        failures.append(exc)


# ---------------------------------------------------------------- restore


@dataclass
class RestoreResult:
    files: int = 0
    bytes: int = 0
    kept: int = 0  # files HOME already had (never overwritten)
    refused: list[str] = field(default_factory=list)  # remote paths outside every store pattern


def restore(home: Path, creds: Credentials | None = None, options: SyncOptions | None = None) -> RestoreResult:
    """Write back every conversation file the workspace has and HOME does not."""
    options = options or load_options(home)
    creds = creds or read_credentials(home)
    target = _target(home, creds, options)
    identity = target.location.identity
    result = RestoreResult()
    with project_lock(home, paths.AGENTS_KEY, LOCK_TIMEOUT_S):
        listing = walk(lambda rel: with_retries(target.list_dir, rel, options), "", options.workers)
        if not listing:
            return result
        logical: dict[str, list[tuple[int, str]]] = {}
        for rel, _size in listing:
            m = _PART_NAME.match(rel)
            name, index = (m.group(1), int(m.group(2))) if m else (rel, -1)
            logical.setdefault(name, []).append((index, rel))
        manifest = _load(_manifest_path(home), identity)
        cache = _load(_cache_path(home))
        lock = threading.Lock()

        def fetch(item: tuple[str, list[tuple[int, str]]]) -> None:
            rel, pieces = item
            dest = home / rel
            if not allowed(rel):
                with lock:
                    result.refused.append(rel)
                return
            if os.path.lexists(dest) or (rel in _SQLITE and os.path.lexists(f"{dest}-wal")):
                with lock:
                    result.kept += 1
                return
            data = b"".join(with_retries(target.download, name, options) or b"" for _, name in sorted(pieces))
            statefile.atomic_write(dest, data)
            sig = _signature(dest, rel)
            sha = hashlib.sha256(data).hexdigest()
            with lock:
                manifest[rel] = {"sha256": sha, "size": len(data), "parts": len(pieces)}
                cache[rel] = {"sig": sig, "sha256": sha, "size": len(data)}
                result.files += 1
                result.bytes += len(data)

        try:
            with ThreadPoolExecutor(max_workers=max(1, options.workers), thread_name_prefix="sync-agents") as pool:
                list(pool.map(fetch, sorted(logical.items())))
        finally:
            _save(_manifest_path(home), manifest, identity)
            _save(_cache_path(home), cache)
    if result.files:
        log_line(home, f"[agents] {result.files} conversation files restored ({human_bytes(result.bytes)})")
    return result
