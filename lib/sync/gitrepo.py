"""The repository side of a project's history: reading a git repository, bundling it, rebuilding one.

``read_repo`` says what ``history.json`` records of a repository (refs,
symbolic refs, HEAD, object format, remotes and upstreams, how the working
tree differs from HEAD); ``make_bundle`` writes the bundle of new commits;
``rebuild`` is the inverse, for a restore: ``git init``, unbundle in order,
set every ref, HEAD, remotes and upstreams, and check out.

Only git and the local disk here, never the workspace: ``githistory``
uploads, ``restore_project`` downloads, and both call this for the git half.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.environment import GIT, scrubbed
from lib.sync.repowatch import git_dir

MAX_LISTED_PATHS = 10_000  # worktree differences kept in history.json
GIT_SLOW_TIMEOUT_S = 1800  # bundling or unbundling a big history
GIT_TIMEOUT_S = 120
RESTORE_REFS = "refs/coda-restore"  # temporary refs while a repository is rebuilt

# The repository settings worth giving back (remotes and upstreams); nothing else
# of .git/config leaves the machine.
_CONFIG_KEYS = re.compile(
    r"^(remote\.[^\n]+\.(url|pushurl|fetch|push|tagopt|mirror|prune)"
    r"|branch\.[^\n]+\.(remote|pushremote|merge|rebase))$",
    re.IGNORECASE,
)
_URL_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)


class HistoryError(RuntimeError):
    """A git command of the history failed (the message is git's)."""


def _git_env() -> dict[str, str]:
    return scrubbed(os.environ, GIT)


def git(repo: Path, *args: str, data: bytes | None = None, check: bool = True,
        timeout: float = GIT_TIMEOUT_S) -> str:
    """Run git in ``repo`` with our hooks off (a rebuild must not start a sync)."""
    proc = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "-C", str(repo), *args],
        input=data, env=_git_env(), capture_output=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise HistoryError(f"git {' '.join(args[:2])} failed: {proc.stderr.decode(errors='replace').strip()[:300]}")
    return proc.stdout.decode("utf-8", errors="surrogateescape")


@dataclass(frozen=True)
class RepoState:
    """The repository's history as ``history.json`` describes it (all but the bundles and the files)."""

    refs: dict[str, str]  # refname -> object id (symbolic refs left out)
    symrefs: dict[str, str]  # e.g. refs/remotes/origin/HEAD -> refs/remotes/origin/main
    head: dict[str, str]  # {"ref": "refs/heads/main"} or {"detached": "<sha>"}
    object_format: str
    config: list[list[str]]  # [key, value] pairs, in order (multi-valued keys repeat)
    status: list[str]  # ``git status --porcelain -z`` entries: how the working tree differs from HEAD

    def describe(self, repo: Path, remote_files: Mapping[str, object], files_digest: str) -> dict[str, Any]:
        """The state to write, for a synced folder holding ``remote_files`` (digest ``files_digest``)."""
        return {"refs": self.refs, "symrefs": self.symrefs, "head": self.head, "object_format": self.object_format,
                "config": self.config, "worktree": worktree(repo, self.status, remote_files),
                "files_digest": files_digest}


def _strip_credentials(key: str, value: str) -> str:
    if key.lower().endswith(("url", "pushurl")):
        return _URL_USERINFO.sub(r"\1", value)
    return value


def read_repo(repo: Path, head_commit: str) -> RepoState:
    """The repository's refs, HEAD (``head_commit`` is its commit), remotes and working-tree status."""
    refs: dict[str, str] = {}
    symrefs: dict[str, str] = {}
    for line in git(repo, "for-each-ref", "--format=%(objectname)%00%(refname)%00%(symref)").splitlines():
        oid, name, sym = (line.split("\x00") + ["", ""])[:3]
        if name.startswith(RESTORE_REFS + "/"):
            continue
        if sym:
            symrefs[name] = sym
        elif oid and name:
            refs[name] = oid
    head: dict[str, str] = {"detached": head_commit}
    gdir = git_dir(repo)
    try:
        text = (gdir / "HEAD").read_text(errors="replace").strip() if gdir else ""
    except OSError:
        text = ""
    if text.startswith("ref: "):
        head = {"ref": text[5:].strip()}
    object_format = "sha1"
    config: list[list[str]] = []
    raw = git(repo, "config", "--local", "-z", "--get-regexp", r"^(remote|branch)\.|^extensions\.objectformat$",
              check=False)
    for item in raw.split("\x00"):
        key, _, value = item.partition("\n")
        if key.lower() == "extensions.objectformat":
            object_format = value.strip().lower() or "sha1"
        elif key and _CONFIG_KEYS.match(key):
            config.append([key, _strip_credentials(key, value)])
    # --no-optional-locks: a sync must never make the user's own git command fail on index.lock.
    status = git(repo, "--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all",
                 "--no-renames", "--ignore-submodules=all", check=False).split("\x00")
    return RepoState(refs, symrefs, head, object_format, config, [e for e in status if len(e) >= 4])


def worktree(repo: Path, status: list[str], remote_files: Mapping[str, object]) -> dict[str, Any]:
    """Which synced files differ from HEAD, and which of HEAD's files are gone from the working tree.

    Only paths the synced folder holds (``remote_files``) can be given back by a
    restore, so only those are listed as changed.
    """
    changed: list[str] = []
    deleted: list[str] = []
    for entry in status:
        path = entry[3:]
        if os.path.lexists(repo / path):
            if path in remote_files:
                changed.append(path)
        elif entry[0] != "?":
            deleted.append(path)
    truncated = len(changed) > MAX_LISTED_PATHS or len(deleted) > MAX_LISTED_PATHS
    return {"changed": sorted(changed)[:MAX_LISTED_PATHS], "deleted": sorted(deleted)[:MAX_LISTED_PATHS],
            "truncated": truncated}


def present(repo: Path, oids: Iterable[str]) -> set[str]:
    """Which of ``oids`` this repository has."""
    wanted = sorted(set(oids))
    if not wanted:
        return set()
    out = git(repo, "cat-file", "--batch-check=%(objectname)", data=("\n".join(wanted) + "\n").encode(), check=False)
    return {line.strip() for line in out.splitlines() if line.strip() in wanted}


def make_bundle(repo: Path, dest: Path, positives: list[str], negatives: list[str]) -> bool:
    """Write a bundle of ``positives`` minus everything reachable from ``negatives``; False when it would be empty."""
    revs = "".join(f"{r}\n" for r in positives) + "".join(f"^{n}\n" for n in negatives)
    proc = subprocess.run(
        ["git", "-C", str(repo), "bundle", "create", "-q", str(dest), "--stdin"],
        input=revs.encode(), env=_git_env(), capture_output=True, timeout=GIT_SLOW_TIMEOUT_S,
    )
    if proc.returncode == 0:
        return True
    err = proc.stderr.decode(errors="replace")
    if "empty bundle" in err:
        return False
    raise HistoryError(f"git bundle create failed: {err.strip()[:300]}")


def rebuild(dest: Path, state: Mapping[str, Any], bundle_files: list[Path]) -> None:
    """Make ``dest`` (new, empty) the repository ``state`` describes, from its bundles in order."""
    dest.mkdir(parents=True, exist_ok=True)
    fmt = str(state.get("object_format") or "sha1")
    git(dest, "init", "-q", *(["--object-format", fmt] if fmt != "sha1" else []))
    temp: list[str] = []
    for i, bundle in enumerate(bundle_files):
        heads = git(dest, "bundle", "unbundle", str(bundle), timeout=GIT_SLOW_TIMEOUT_S)
        # A later bundle's prerequisites must be reachable from a ref (newer gits check): hold
        # this bundle's heads under temporary refs until the real ones are set.
        oids = sorted({line.split()[0] for line in heads.splitlines() if line.strip()})
        names = [f"{RESTORE_REFS}/{i}/{n}" for n in range(len(oids))]
        if names:
            lines = "".join(f"create {r} {o}\n" for r, o in zip(names, oids, strict=True))
            git(dest, "update-ref", "--stdin", data=lines.encode())
            temp += names
    refs: dict[str, str] = dict(state.get("refs", {}))
    if refs:
        git(dest, "update-ref", "--stdin", data="".join(f"create {r} {o}\n" for r, o in refs.items()).encode())
    if temp:
        git(dest, "update-ref", "--stdin", data="".join(f"delete {r}\n" for r in temp).encode())
    for name, target in dict(state.get("symrefs", {})).items():
        git(dest, "symbolic-ref", name, target)
    head = state.get("head") or {}
    if head.get("ref"):
        git(dest, "symbolic-ref", "HEAD", str(head["ref"]))
    elif head.get("detached"):
        git(dest, "update-ref", "--no-deref", "HEAD", str(head["detached"]))
    for key, value in state.get("config", []):
        if _CONFIG_KEYS.match(key):
            git(dest, "config", "--add", key, value)
    if git(dest, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False).strip():
        git(dest, "reset", "-q", "--hard", timeout=GIT_SLOW_TIMEOUT_S)
