"""Bringing one project back from the workspace into ``~/projects/<name>``.

``restore_history`` (the workspace has its history):

1. downloads ``history.json`` and its bundles (in parallel; each bundle's
   sha256 checked), rebuilds the repository in a hidden folder next to where
   it goes (``gitrepo.rebuild``: every ref, HEAD, remotes, then checkout);
2. gives back the working tree as it was synced: files the sync uploaded that
   differ from the checked-out commit come from the synced folder, files
   deleted there are deleted;
3. renames the folder into place, which fails rather than replace anything.

``restore_files`` (the workspace has the project only as files, synced before
histories were kept): those files in a fresh ``git init``, moved into place
the same way.

Either way the sync's manifest (and, with a history, its history state) is
written for the restored folder: ``restore_history`` when the folder equals
what the workspace holds (the digest in ``history.json``), ``restore_files``
from the exact list it downloaded. The first commit afterwards then uploads
only what it changed.

Separate from ``restore``, which decides which projects to bring back and
reports on all of them; this module does one, and never looks at the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from lib.sync import manifest as manifest_mod
from lib.sync import paths
from lib.sync.backoff import with_retries
from lib.sync.credentials import Credentials
from lib.sync.gitfiles import snapshot
from lib.sync.githistory import quote_name
from lib.sync.gitrepo import git, rebuild
from lib.sync.historyplan import STATE_FILE, parse_state, save_state
from lib.sync.options import SyncOptions
from lib.sync.records import human_bytes
from lib.sync.targets import RemoteEntry, Target, locate, locate_history, walk

HISTORY_DIR = ".coda/history"
PROJECTS_DIR = "projects"

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


class Source:
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


def _staging(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent / f".restoring-{folder.name}-{os.getpid()}"


def _move_into_place(tmp: Path, folder: Path) -> None:
    # rename(2) replaces nothing but an empty folder, so a project created meanwhile is safe.
    try:
        os.rename(tmp, folder)
    except OSError as exc:
        raise FileExistsError(f"{folder} appeared while restoring; the local one was kept") from exc


def _download_bundles(src: Source, base: str, state: dict[str, Any], scratch: Path, say: Progress) -> list[Path]:
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


def _overlay(src: Source, project: str, state: dict[str, Any], tmp: Path) -> tuple[int, int]:
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
        save_state(home, project, locate_history(home, project, creds).identity, state)
    return True


def restore_history(home: Path, project: str, src: Source, creds: Credentials, options: SyncOptions,
                     say: Progress) -> ProjectRestore:
    base = f"{HISTORY_DIR}/{project}"
    state = parse_state(src.download(f"{base}/{STATE_FILE}"))
    if state is None:
        raise ValueError(f"{base}/{STATE_FILE} is missing or not a history this app wrote")
    folder = paths.projects_dir(home) / project
    tmp = _staging(folder)
    scratch = paths.scratch_dir(home) / f"restore-{quote_name(project)}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        files = _download_bundles(src, base, state, scratch, say)
        say(f"rebuilding the repository from {len(files)} bundle{'s' if len(files) != 1 else ''}")
        rebuild(tmp, state, files)
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


def restore_files(home: Path, project: str, src: Source, creds: Credentials, options: SyncOptions,
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
        git(tmp, "init", "-q")
        _adopt_sync_state(home, project, tmp, creds, options, None, remote)
        _move_into_place(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ProjectRestore(project, Outcome.FILES,
                          f"{len(remote)} files, no history in the workspace (commit to start one)")
