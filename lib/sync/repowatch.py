"""Commits our git hook cannot see: repositories with their own ``core.hooksPath``.

The sync hook lives in the global ``core.hooksPath``. A repository that sets
its own (husky sets ``.husky/_`` or ``.husky``; others use ``.githooks``)
replaces ours, so git never runs it there. Rather than edit files in such a
repository's hooks folder (often tracked by git, and rewritten by ``npm
install`` in husky's case) or ask every shell and agent to carry a git
setting in its environment (agents filter environments), the app notices
those commits itself: ``RepoWatcher.poll`` looks (with ``stat`` only, no git
process) at each such repository's ``HEAD``, its reflog and the checked-out
branch's ref, and names the projects whose history moved. The app's
background driver syncs them; the latency is one poll (a second).

Repositories that use our hook are left to it: syncing them here too would
only double the work. A repository is checked for its own hooks path again
whenever its ``.git/config`` changes.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lib.environment import GIT, scrubbed
from lib.homefiles import git_hooks_dir, projects_dir
from lib.sync.paths import project_for

_Signature = tuple[tuple[int, int], ...]


def git_dir(repo: Path) -> Path | None:
    """The repository's git folder (``.git`` or where a ``.git`` file points), or None."""
    dot = repo / ".git"
    if dot.is_dir():
        return dot
    if dot.is_file():
        try:
            text = dot.read_text(errors="replace").strip()
        except OSError:
            return None
        if text.startswith("gitdir:"):
            target = Path(text[len("gitdir:"):].strip())
            return target if target.is_absolute() else (repo / target).resolve()
    return None


def own_hooks_path(repo: Path, gdir: Path) -> str | None:
    """The repository's own ``core.hooksPath`` (its config, not the global one), or None."""
    proc = subprocess.run(
        ["git", "config", "--file", str(gdir / "config"), "--includes", "--get", "core.hooksPath"],
        env=scrubbed(os.environ, GIT), capture_output=True, text=True, timeout=10,
    )
    value = proc.stdout.strip()
    return value or None


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
        return st.st_mtime_ns, st.st_size
    except OSError:
        return 0, 0


def signature(gdir: Path) -> _Signature:
    """Changes whenever a commit, merge, rebase, reset or checkout moves HEAD (or its branch)."""
    head = gdir / "HEAD"
    files = [head, gdir / "logs" / "HEAD", gdir / "packed-refs"]
    try:
        text = head.read_text(errors="replace").strip()
    except OSError:
        text = ""
    if text.startswith("ref: "):
        common = gdir
        commondir = gdir / "commondir"
        if commondir.is_file():
            try:
                common = (gdir / commondir.read_text().strip()).resolve()
            except OSError:
                pass
        files.append(common / text[5:])
    return tuple(_stat(f) for f in files)


@dataclass
class _Seen:
    config: tuple[int, int]
    foreign: bool
    signature: _Signature


class RepoWatcher:
    """Which projects under ``~/projects`` committed without our hook, since the last poll."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._ours = git_hooks_dir(home).resolve()
        self._seen: dict[str, _Seen] = {}

    def _candidates(self) -> list[Path]:
        root = projects_dir(self.home)
        try:
            top = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except OSError:
            return []
        repos = []
        for folder in top:
            if (folder / ".git").exists():
                repos.append(folder)
                continue
            try:  # a group folder: its repositories are projects "group/repo"
                repos += [p for p in folder.iterdir()
                          if p.is_dir() and not p.name.startswith(".") and (p / ".git").exists()]
            except OSError:
                continue
        return repos

    def _is_foreign(self, repo: Path, gdir: Path) -> bool:
        value = own_hooks_path(repo, gdir)
        if value is None:
            return False
        path = Path(os.path.expanduser(value))
        if not path.is_absolute():
            path = repo / path
        try:
            return path.resolve() != self._ours
        except OSError:
            return True

    def poll(self) -> list[str]:
        """Projects to sync now: their own hooks path hides ours, and HEAD moved (or they are new to us)."""
        due: list[str] = []
        alive: set[str] = set()
        for repo in self._candidates():
            project = project_for(self.home, repo)
            gdir = git_dir(repo)
            if project is None or gdir is None:
                continue
            alive.add(project)
            config = _stat(gdir / "config")
            seen = self._seen.get(project)
            foreign = seen.foreign if seen and seen.config == config else self._is_foreign(repo, gdir)
            sig = signature(gdir)
            if foreign and (seen is None or not seen.foreign or seen.signature != sig):
                due.append(project)
            self._seen[project] = _Seen(config, foreign, sig)
        for gone in set(self._seen) - alive:
            del self._seen[gone]
        return due
