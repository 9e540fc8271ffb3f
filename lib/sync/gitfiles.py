"""What a project consists of: the files git would consider part of it.

``git ls-files --cached --others --exclude-standard`` is the working tree as a
user thinks of it: tracked files plus new ones, minus whatever .gitignore
says. ``.git/`` never appears in it. Symlinks are skipped rather than followed
(a link to ``~/.databrickscfg`` must never be uploaded), and so are files over
the size cap.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lib.environment import GIT, scrubbed

GIT_TIMEOUT_S = 60


@dataclass(frozen=True)
class LocalFile:
    path: str  # posix path relative to the repository root
    size: int
    sha256: str


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class Snapshot:
    files: dict[str, LocalFile]
    skipped: list[Skipped]


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        env=scrubbed(os.environ, GIT),  # a hook inherits GIT_INDEX_FILE and friends
        capture_output=True,
        timeout=GIT_TIMEOUT_S,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode("utf-8", errors="surrogateescape")


def toplevel(path: Path) -> Path | None:
    """The worktree root containing ``path``, or None when it is not in a git worktree."""
    try:
        out = git(path, "rev-parse", "--show-toplevel").strip()
    except (RuntimeError, FileNotFoundError, NotADirectoryError, subprocess.TimeoutExpired):
        return None
    return Path(out) if out else None


def head_commit(repo: Path) -> tuple[str | None, str | None]:
    """``(sha, subject)`` of HEAD, or ``(None, None)`` before the first commit."""
    out = git(repo, "log", "-1", "--format=%H%x00%s", check=False).strip()
    if not out or "\x00" not in out:
        return None, None
    sha, subject = out.split("\x00", 1)
    return sha, subject[:200]


def list_paths(repo: Path) -> list[str]:
    out = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    seen: set[str] = set()
    result = []
    for name in out.split("\x00"):
        # Nested repositories show up as "dir/"; a merge conflict lists a path more than once.
        if not name or name.endswith("/") or name in seen:
            continue
        parts = name.split("/")
        if ".git" in parts:
            continue
        seen.add(name)
        result.append(name)
    return result


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_file(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def snapshot(repo: Path, max_file_bytes: int) -> Snapshot:
    """Every file to mirror, with its hash; plus what was left out and why."""
    files: dict[str, LocalFile] = {}
    skipped: list[Skipped] = []
    base = str(repo)
    for name in list_paths(repo):
        full = os.path.join(base, name)  # plain strings: this loop runs once per file
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue  # deleted from the worktree but still in the index: gone
        except OSError as exc:
            skipped.append(Skipped(name, f"unreadable: {exc.strerror}"))
            continue
        if stat.S_ISLNK(st.st_mode):
            skipped.append(Skipped(name, "symbolic link (not uploaded)"))
            continue
        if not stat.S_ISREG(st.st_mode):
            continue  # submodule folder and the like
        if st.st_size > max_file_bytes:
            skipped.append(Skipped(name, f"{st.st_size} bytes is over the {max_file_bytes} byte limit"))
            continue
        try:
            size, digest = _hash_file(full)
        except OSError as exc:
            skipped.append(Skipped(name, f"unreadable: {exc.strerror}"))
            continue
        files[name] = LocalFile(name, size, digest)
    return Snapshot(files, skipped)
