"""Bring projects back from the workspace at boot: history, branches, HEAD and files.

A new container starts with an empty HOME. For every project the workspace
has (a history folder ``.coda/history/<name>``, or failing that a synced
folder ``projects/<name>``) and ``~/projects`` does not, ``restore_all``:

1. downloads ``history.json`` and its bundles (in parallel; each bundle's
   sha256 checked), rebuilds the repository in a hidden folder next to where
   it goes (``githistory.rebuild``: every ref, HEAD, remotes, then checkout);
2. gives back the working tree as it was synced: files the sync uploaded that
   differ from the checked-out commit come from the synced folder, files
   deleted there are deleted;
3. renames the folder into place, which fails rather than replace anything.

A project is never overwritten: one that exists locally (a non-empty folder)
is kept as it is. One that this HOME synced before and no longer has was
deleted here on purpose and is not brought back (its sync state in
``~/.coda/sync`` says so). A project the workspace has only as files (synced
before histories were kept) comes back as those files in a fresh ``git init``.

When the restored folder equals what the workspace folder holds (the digest
in ``history.json``), the sync's manifest and history state are written too,
so the first commit afterwards uploads only what it changed. Last, the
agents' conversation stores come back (``conversations.restore``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from lib.sync import conversations, paths
from lib.sync import githistory as hist
from lib.sync import manifest as manifest_mod
from lib.sync.credentials import Credentials, read_credentials
from lib.sync.engine import with_retries
from lib.sync.errors import explain
from lib.sync.gitfiles import snapshot
from lib.sync.options import SyncOptions, load_options
from lib.sync.records import human_bytes, log_line
from lib.sync.targets import Location, RemoteEntry, Target, locate, locate_history, target_at, walk

HISTORY_DIR = ".coda/history"
PROJECTS_DIR = "projects"
MAX_DEPTH = 4  # nested projects (group/repo) in the history folder

Progress = Callable[[str], None]


class Outcome(StrEnum):
    RESTORED = "restored"  # history, refs, HEAD and files
    FILES = "files"  # files only (the workspace had no history for it)
    KEPT = "kept"  # a local project of that name exists: left alone
    SKIPPED = "skipped"  # deleted here on purpose
    FAILED = "failed"


@dataclass
class ProjectRestore:
    project: str
    outcome: Outcome
    detail: str = ""
    bytes: int = 0
    seconds: float = 0.0


@dataclass
class RestoreReport:
    projects: list[ProjectRestore] = field(default_factory=list)
    conversations: conversations.RestoreResult | None = None
    skipped_reason: str | None = None  # nothing was tried (no workspace)
    bytes: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> list[ProjectRestore]:
        return [p for p in self.projects if p.outcome is Outcome.FAILED]

    def summary(self) -> str:
        """One or two sentences for the Setup page."""
        if self.skipped_reason:
            return self.skipped_reason
        parts = []
        for outcome, words in ((Outcome.RESTORED, "restored"), (Outcome.FILES, "restored as files only"),
                               (Outcome.KEPT, "kept (exists locally)"), (Outcome.SKIPPED, "not restored"),
                               (Outcome.FAILED, "failed")):
            names = [p.project for p in self.projects if p.outcome is outcome]
            if names:
                parts.append(f"{words}: {', '.join(names)}")
        text = "; ".join(parts) if parts else "no projects in the workspace to restore"
        conv = self.conversations
        if conv and conv.files:
            text += f"; {conv.files} agent conversation file{'s' if conv.files != 1 else ''} restored"
        if self.bytes:
            text += f" ({human_bytes(self.bytes)} in {self.seconds:.1f} s)"
        for p in self.failed:
            text += f". {p.project}: {p.detail}"
        return text


class _Source:
    """The user's folder in the workspace (or the local mirror), with byte counting and retries."""

    def __init__(self, target: Target, options: SyncOptions) -> None:
        self.target = target
        self.options = options
        self.bytes = 0
        self._lock = threading.Lock()

    def download(self, rel: str) -> bytes | None:
        data = with_retries(self.target.download, rel, self.options)
        if data:
            with self._lock:
                self.bytes += len(data)
        return data

    def list_dir(self, rel: str) -> list[RemoteEntry] | None:
        return with_retries(self.target.list_dir, rel, self.options)

    def walk(self, rel: str) -> list[tuple[str, int]]:
        """Every file below ``rel``, as (path relative to ``rel``, size)."""
        return walk(self.list_dir, rel, self.options.workers)


def _user_target(home: Path, creds: Credentials, options: SyncOptions) -> Target:
    root = paths.user_root(creds.owner)
    if creds.workspace_ready:
        assert creds.host
        return target_at(Location.workspace_at(creds.host, root), creds, options)
    return target_at(Location.local_at(home, root), creds, options)


def _history_projects(src: _Source) -> list[str]:
    """Project names with a ``history.json`` under ``.coda/history`` (nested names included)."""
    found: list[str] = []
    level = [""]
    for _depth in range(MAX_DEPTH):
        nxt: list[str] = []
        for sub in level:
            entries = src.list_dir(f"{HISTORY_DIR}/{sub}" if sub else HISTORY_DIR) or []
            names = {e.name for e in entries if not e.is_dir}
            if sub and hist.STATE_FILE in names:
                found.append(sub)
                continue
            nxt += [f"{sub}/{e.name}" if sub else e.name for e in entries if e.is_dir]  # a group folder
        level = nxt
        if not level:
            break
    return sorted(found)


def _folder_projects(src: _Source) -> list[str]:
    return sorted(e.name for e in src.list_dir(PROJECTS_DIR) or [] if e.is_dir and not e.name.startswith("."))


def _was_here(home: Path, project: str) -> bool:
    """This HOME synced the project before (so its absence is the user's doing)."""
    return paths.manifest_path(home, project).exists() or paths.history_state_path(home, project).exists()


def _occupied(folder: Path) -> bool:
    if folder.is_symlink() or folder.is_file():
        return True
    if not folder.is_dir():
        return False
    return any(folder.iterdir())


def restore_all(home: Path, *, owner: str | None = None, progress: Progress | None = None,
                options: SyncOptions | None = None) -> RestoreReport:
    """Restore every project (and the agents' conversations) the workspace has and HOME does not.

    ``owner`` overrides the owner on disk (the boot setup knows it before
    ``identity.json`` may exist). Never raises for workspace problems: each
    project's failure is in the report, in words.
    """
    began = time.monotonic()
    say = progress or (lambda _text: None)
    options = options or load_options(home)
    creds = read_credentials(home)
    if owner:
        creds = dataclasses.replace(creds, owner=owner)
    report = RestoreReport()
    if not creds.workspace_ready:
        missing = "owner" if creds.host and creds.token else "token"
        report.skipped_reason = f"no workspace {missing} yet: nothing to restore from"
        return report
    src = _Source(_user_target(home, creds, options), options)
    say("looking for projects in the workspace")
    try:
        with_history = _history_projects(src)
        # A folder holding nested projects (group/repo) is not a project of its own.
        files_only = [n for n in _folder_projects(src)
                      if n not in with_history and not any(h.startswith(n + "/") for h in with_history)]
    except Exception as exc:  # noqa: BLE001 - said in words on the Setup page
        report.projects.append(ProjectRestore("(workspace)", Outcome.FAILED, explain(exc, host=creds.host)))
        return report
    names = sorted(set(with_history) | set(files_only))
    for i, name in enumerate(names, 1):
        prefix = f"{name} ({i}/{len(names)})"
        folder = paths.projects_dir(home) / name
        if _occupied(folder):
            report.projects.append(ProjectRestore(name, Outcome.KEPT, "a local project of that name exists"))
            continue
        if _was_here(home, name):
            report.projects.append(ProjectRestore(name, Outcome.SKIPPED, "deleted here after it was synced"))
            continue
        started, before = time.monotonic(), src.bytes
        try:
            if name in with_history:
                result = _restore_history(home, name, src, creds, options, lambda t, p=prefix: say(f"{p}: {t}"))
            else:
                result = _restore_files(home, name, src, creds, options, lambda t, p=prefix: say(f"{p}: {t}"))
        except Exception as exc:  # noqa: BLE001 - one project's failure must not stop the others
            result = ProjectRestore(name, Outcome.FAILED, explain(exc, host=creds.host))
        result.bytes = src.bytes - before
        result.seconds = round(time.monotonic() - started, 3)
        report.projects.append(result)
        log_line(home, f"[{name}] restore from the workspace: {result.outcome}"
                       f"{': ' + result.detail if result.detail else ''} ({human_bytes(result.bytes)}, "
                       f"{result.seconds:.1f} s)")
    say("restoring the agents' conversations")
    try:
        report.conversations = conversations.restore(home, creds, options)
        src.bytes += report.conversations.bytes
    except Exception as exc:  # noqa: BLE001 - said in words on the Setup page
        report.projects.append(ProjectRestore("(agent conversations)", Outcome.FAILED, explain(exc, host=creds.host)))
    report.bytes = src.bytes
    report.seconds = round(time.monotonic() - began, 3)
    return report


def _staging(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent / f".restoring-{folder.name}-{os.getpid()}"


def _move_into_place(tmp: Path, folder: Path) -> None:
    # rename(2) replaces nothing but an empty folder, so a project created meanwhile is safe.
    try:
        os.rename(tmp, folder)
    except OSError as exc:
        raise FileExistsError(f"{folder} appeared while restoring; the local one was kept") from exc


def _download_bundles(src: _Source, base: str, state: dict[str, Any], scratch: Path, say: Progress) -> list[Path]:
    """Each bundle of ``state`` as a file in ``scratch``, its parts fetched in parallel and its sha256 checked."""
    bundles: list[dict[str, Any]] = list(state.get("bundles", []))
    jobs = [(int(b["seq"]), i, part) for b in bundles for i, part in enumerate(b.get("parts", []))]
    total = sum(int(b.get("bytes", 0)) for b in bundles)
    done = [0]
    lock = threading.Lock()

    def fetch(job: tuple[int, int, str]) -> None:
        seq, index, part = job
        data = src.download(f"{base}/{part}")
        if data is None:
            raise FileNotFoundError(f"bundle part {part} is missing from the workspace")
        (scratch / f"{seq:06d}.{index:04d}.part").write_bytes(data)  # on disk: a history can be big
        with lock:
            done[0] += len(data)
            say(f"downloading history: {human_bytes(done[0])} of {human_bytes(total)}")

    with ThreadPoolExecutor(max_workers=max(1, src.options.workers)) as pool:
        list(pool.map(fetch, jobs))
    files = []
    for bundle in bundles:
        seq = int(bundle["seq"])
        path = scratch / f"{seq:06d}.bundle"
        digest = hashlib.sha256()
        with open(path, "wb") as out:
            for index in range(len(bundle.get("parts", []))):
                part = scratch / f"{seq:06d}.{index:04d}.part"
                with open(part, "rb") as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
                part.unlink()
        if digest.hexdigest() != bundle.get("sha256"):
            raise ValueError(f"bundle {seq} does not match its checksum (damaged in the workspace?)")
        files.append(path)
    return files


def _overlay(src: _Source, project: str, state: dict[str, Any], tmp: Path) -> tuple[int, int]:
    """Give back the synced working tree: changed files from the synced folder, deleted ones removed."""
    worktree = state.get("worktree") or {}
    changed = [p for p in worktree.get("changed", []) if _safe_rel(p)]
    got = 0

    def fetch(rel: str) -> tuple[str, bytes | None]:
        return rel, src.download(f"{PROJECTS_DIR}/{project}/{rel}")

    with ThreadPoolExecutor(max_workers=max(1, src.options.workers)) as pool:
        for rel, data in pool.map(fetch, changed):
            if data is None:
                continue
            dest = tmp / rel
            if dest.is_symlink() or dest.is_dir():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            got += 1
    removed = 0
    for rel in worktree.get("deleted", []):
        if _safe_rel(rel):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                (tmp / rel).unlink()
                removed += 1
    return got, removed


def _safe_rel(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and ".." not in parts and ".git" not in parts


def _adopt_sync_state(home: Path, project: str, folder: Path, creds: Credentials, options: SyncOptions,
                      state: dict[str, Any] | None, remote: dict[str, dict[str, object]] | None) -> bool:
    """Write the manifest (and history state) a sync would have, when the folder equals the workspace's.

    ``remote`` is what the synced folder holds when known exactly (files-only
    restore); else ``state``'s digest says whether the restored tree matches.
    """
    snap = snapshot(folder, options.max_file_bytes)
    files = {p: {"sha256": f.sha256, "size": f.size} for p, f in snap.files.items()}
    where = locate(home, project, creds)
    if remote is not None:
        files = remote
    elif not state or manifest_mod.digest(files) != state.get("files_digest"):
        return False
    manifest_mod.save(home, project, manifest_mod.Manifest(target=where.identity, files=files))
    if state is not None:
        hist.save_state(home, project, locate_history(home, project, creds).identity, state)
    return True


def _restore_history(home: Path, project: str, src: _Source, creds: Credentials, options: SyncOptions,
                     say: Progress) -> ProjectRestore:
    base = f"{HISTORY_DIR}/{project}"
    state = hist.parse_state(src.download(f"{base}/{hist.STATE_FILE}"))
    if state is None:
        raise ValueError(f"{base}/{hist.STATE_FILE} is missing or not a history this app wrote")
    folder = paths.projects_dir(home) / project
    tmp = _staging(folder)
    scratch = paths.scratch_dir(home) / f"restore-{hist.quote_name(project)}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        files = _download_bundles(src, base, state, scratch, say)
        say(f"rebuilding the repository from {len(files)} bundle{'s' if len(files) != 1 else ''}")
        hist.rebuild(tmp, state, files)
        say("restoring the synced working tree")
        got, removed = _overlay(src, project, state, tmp)
        adopted = _adopt_sync_state(home, project, tmp, creds, options, state, None)
        _move_into_place(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    head = state.get("head") or {}
    where = str(head.get("ref", "")).removeprefix("refs/heads/") or str(head.get("detached", ""))[:8]
    branches = sum(1 for r in state.get("refs", {}) if r.startswith("refs/heads/"))
    detail = f"{branches} branch{'es' if branches != 1 else ''}, on {where or 'no commit'}"
    if got or removed:
        detail += f", {got + removed} uncommitted change{'s' if got + removed != 1 else ''} as synced"
    if not adopted:
        detail += "; the next sync uploads the folder again"
    return ProjectRestore(project, Outcome.RESTORED, detail)


def _restore_files(home: Path, project: str, src: _Source, creds: Credentials, options: SyncOptions,
                   say: Progress) -> ProjectRestore:
    base = f"{PROJECTS_DIR}/{project}"
    listing = [(rel, size) for rel, size in src.walk(base) if _safe_rel(rel)]
    folder = paths.projects_dir(home) / project
    tmp = _staging(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    remote: dict[str, dict[str, object]] = {}
    try:
        tmp.mkdir(parents=True)
        done = [0]

        def fetch(item: tuple[str, int]) -> tuple[str, bytes | None]:
            data = src.download(f"{base}/{item[0]}")
            done[0] += 1
            say(f"downloading files {done[0]}/{len(listing)}")
            return item[0], data

        with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
            for rel, data in pool.map(fetch, listing):
                if data is None:
                    continue
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
                remote[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        hist.git(tmp, "init", "-q")
        _adopt_sync_state(home, project, tmp, creds, options, None, remote)
        _move_into_place(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ProjectRestore(project, Outcome.FILES,
                          f"{len(remote)} files, no history in the workspace (commit to start one)")
