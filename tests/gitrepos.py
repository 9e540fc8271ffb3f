"""Shared helpers and fixtures for the workspace-sync tests (no tests here).

Everything runs in a throwaway HOME: git is always started with ``HOME`` set
to it (and no ``GIT_*``/``XDG_CONFIG_HOME`` from the outside), so the global
``core.hooksPath`` the tests install never touches the real user's config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from lib import homefiles
from lib.environment import DATABRICKS, GIT, scrubbed
from lib.sync import install_hook, paths
from tests.fakeworkspace import FakeWorkspace

OWNER = "Owner.Person@example.com"
FAST_OPTIONS = {"retry_timeout_s": 2, "attempts": 3, "backoff_s": 0.1, "backoff_max_s": 1.0}
HOOK_TIMEOUT_S = 90.0  # a detached sync imports databricks-sdk first (seconds on a slow box)


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition", interval: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def git_env(home: Path) -> dict[str, str]:
    return {**scrubbed(os.environ, GIT + DATABRICKS, {"XDG_CONFIG_HOME"}), "HOME": str(home)}


def git(repo: Path, home: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=git_env(home), capture_output=True, text=True, timeout=60
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def commit_all(repo: Path, home: Path, message: str) -> str:
    """``git add -A && git commit``; returns the new HEAD sha."""
    git(repo, home, "add", "-A")
    git(repo, home, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, home, "rev-parse", "HEAD").strip()


def make_repo(home: Path, name: str = "demo", parent: Path | None = None) -> Path:
    repo = (parent or paths.projects_dir(home)) / name
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, home, "init", "-q", "-b", "main")
    return repo


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def records(home: Path) -> list[dict[str, Any]]:
    try:
        lines = homefiles.sync_records_path(home).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def wait_record(home: Path, predicate: Callable[[dict[str, Any]], bool], timeout: float = HOOK_TIMEOUT_S,
                what: str = "a sync record") -> dict[str, Any]:
    """The first record matching ``predicate`` (waits for it to be written)."""
    return wait_for(lambda: next((r for r in records(home) if predicate(r)), None), timeout, what, interval=0.1)


def expected_tree(repo: Path, home: Path, max_bytes: int = 10 * 1024 * 1024) -> dict[str, bytes]:
    """What the target must hold: git's view of the worktree, regular files under the cap."""
    out = git(repo, home, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    tree = {}
    for rel in out.split("\x00"):
        path = repo / rel
        if rel and path.is_file() and not path.is_symlink() and path.stat().st_size <= max_bytes:
            tree[rel] = path.read_bytes()
    return tree


def remote_prefix(project: str = "demo", owner: str = OWNER) -> str:
    return f"/Users/{owner}/projects/{project}/"


def remote_tree(fw: FakeWorkspace, project: str = "demo", owner: str = OWNER) -> dict[str, bytes]:
    """The fake workspace's files under the project folder, relative to it."""
    prefix = remote_prefix(project, owner)
    return {p[len(prefix):]: data for p, data in fw.files.items() if p.startswith(prefix)}


def mirror_root(home: Path, project: str = "demo", owner: str | None = OWNER) -> Path:
    return homefiles.workspace_mirror_dir(home) / paths.remote_root(owner, project)


def mirror_tree(home: Path, project: str = "demo", owner: str | None = OWNER) -> dict[str, bytes]:
    root = mirror_root(home, project, owner)
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def write_credentials(home: Path, fw: FakeWorkspace | None, token: str | None) -> None:
    """What the app keeps on disk: ``~/.databrickscfg`` and ``~/.coda/identity.json``."""
    homefiles.write_identity(home, owner=OWNER, display_name=None, source="test", resolved_at=time.time())
    cfg = homefiles.databrickscfg_path(home)
    if fw is not None and token:
        cfg.write_text(f"[DEFAULT]\nhost = {fw.url}\ntoken = {token}\n")
        cfg.chmod(0o600)
    elif cfg.exists():
        cfg.unlink()


def write_options(home: Path, **overrides: Any) -> None:
    options = homefiles.sync_options_path(home)
    options.parent.mkdir(parents=True, exist_ok=True)
    options.write_text(json.dumps({**FAST_OPTIONS, **overrides}))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh HOME with ~/projects, a git identity and fast retry options (no hook yet)."""
    home = tmp_path / "home"
    paths.projects_dir(home).mkdir(parents=True)
    git(home, home, "config", "--global", "user.name", "Sync Test")
    git(home, home, "config", "--global", "user.email", "sync-test@example.com")
    git(home, home, "config", "--global", "init.defaultBranch", "main")
    write_options(home)
    return home


@pytest.fixture
def hooked_home(home: Path) -> Path:
    """``home`` with the global hook installed, as the app does at boot."""
    install_hook(home, python=sys.executable)
    return home


@pytest.fixture
def fw() -> Iterator[FakeWorkspace]:
    server = FakeWorkspace(owner_email=OWNER)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ws_home(home: Path, fw: FakeWorkspace) -> Path:
    """``home`` pointed at the fake workspace with a valid token for the owner."""
    write_credentials(home, fw, fw.create_token(user=OWNER))
    return home


def import_path(request: Any) -> str:
    """The workspace path a recorded import request wrote (multipart form field ``path``, or JSON)."""
    body: bytes = request.body
    marker = b'name="path"'
    at = body.find(marker)
    if at >= 0:
        start = body.index(b"\r\n\r\n", at) + 4
        return body[start:body.index(b"\r\n", start)].decode()
    try:
        return str(request.json().get("path", ""))
    except ValueError:
        return ""


def import_requests(fw: FakeWorkspace, under: str | None = None) -> list[Any]:
    """Workspace imports; with ``under`` (``"projects/demo/"``, ``".coda/history/demo/"``) only those
    writing below that folder of the owner's."""
    found = [r for r in fw.requests if r.method == "POST" and r.path == "/api/2.0/workspace/import"]
    if under is not None:
        prefix = f"/Workspace/Users/{OWNER}/{under}"
        found = [r for r in found if import_path(r).startswith(prefix)]
    return found


def settle(home: Path, project: str = "demo", timeout: float = HOOK_TIMEOUT_S) -> None:
    """Wait until no sync of ``project`` holds its lock (all queued hook syncs are done)."""
    import fcntl

    lock = paths.lock_path(home, project)

    def free() -> bool:
        if not lock.exists():
            return False
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    wait_for(free, timeout, f"the {project} sync lock to be free", interval=0.1)


CONTENT: dict[str, bytes] = {
    "README.md": b"# demo\n\nhello workspace\n",
    "data/all-bytes.bin": bytes(range(256)) * 4,
    "src/pkg/deep/nested/module.py": b"def f():\n    return 42\n",
    "src/notebook_like.py": b"# Databricks notebook source\nprint('exact bytes, not a notebook')\n",
    "notes/analysis.ipynb": b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n',
    "empty.txt": b"",
    "unicod\u00e9/\u65e5\u672c\u8a9e \u0444\u0430\u0439\u043b.txt": "caf\u00e9 \u2615 \u65e5\u672c\n".encode(),
    "with space/and#hash%.txt": b"odd name\n",
    ".gitignore": b"*.log\nbuild/\n",
    "ignored.log": b"never uploaded\n",
    "build/out.o": b"never uploaded either\n",
}
IGNORED = {"ignored.log", "build/out.o"}
