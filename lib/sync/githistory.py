"""A project's git history in the workspace: incremental git bundles plus ``history.json``.

Where (``paths.history_root``), next to the synced folder rather than inside it::

    /Workspace/Users/<you>/.coda/history/<name>/history.json      what to rebuild: bundles in order, refs, HEAD
    /Workspace/Users/<you>/.coda/history/<name>/bundles/000001.bundle
    /Workspace/Users/<you>/.coda/history/<name>/bundles/000002.bundle.000, 000002.bundle.001   (a big one, in parts)

Uploading, under the project lock, in two steps: ``prepare`` (run by the
engine alongside the file sync) compares the repository's refs with the refs
the last ``history.json`` holds and uploads a bundle when there are new
commits; ``finish`` (after the files) writes ``history.json``. Only objects
reachable from the new refs and not from the uploaded ones are bundled (``git
bundle create --stdin`` with ``^tip`` for every uploaded tip this repository
still has), so one more commit costs about the size of that commit. ``history.json`` is written last: a run that fails
halfway leaves the previous history whole, and its retry reuses the same
bundle names. Past ``history_max_bundles`` bundles (or when none of the
uploaded tips is here any more) one full bundle replaces them all.

``history.json`` also says which files of the synced folder differ from the
checked-out commit (uncommitted edits and untracked files the sync uploaded)
and a digest of what the folder holds, so a restore can give back the working
tree as it was synced and know whether the folder already equals it.

Rebuilding (``rebuild``) is the inverse: ``git init``, unbundle in order, set
every ref, HEAD, remotes and upstreams, and check out. The planning is pure
(``plan``); the git and workspace calls are around it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib import statefile
from lib.environment import GIT, scrubbed
from lib.sync import paths
from lib.sync.records import human_bytes, now_iso
from lib.sync.repowatch import git_dir
from lib.sync.targets import Target

FORMAT = "coda-history/1"
STATE_FILE = "history.json"
BUNDLES_DIR = "bundles"
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


# ---------------------------------------------------------------- git


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


# ---------------------------------------------------------------- the plan (pure)


def comparable(state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The part of a state that says whether anything changed (not bundles, times or counters)."""
    if not state:
        return None
    keys = ("refs", "symrefs", "head", "object_format", "config", "worktree", "files_digest")
    return {k: state.get(k) for k in keys}


@dataclass(frozen=True)
class HistoryPlan:
    """Which bundle one upload makes (``history.json`` is written whenever the state differs)."""

    bundle: bool  # a bundle must be tried (it may turn out empty)
    full: bool  # the bundle holds everything and replaces all earlier ones
    seq: int  # the new bundle's number
    positives: list[str]  # refs to bundle
    negatives: list[str]  # tips already uploaded that this repository has
    keep: list[dict[str, Any]]  # bundles history.json still lists before the new one
    drop: list[dict[str, Any]]  # bundles to delete once history.json no longer lists them


def plan(previous: Mapping[str, Any] | None, refs: Mapping[str, str], object_format: str, here: set[str],
         max_bundles: int) -> HistoryPlan:
    """Decide the bundle from the previous ``history.json`` (or None), the refs now, and which of the
    previous tips this repository has (``here``)."""
    prev_bundles = list(previous.get("bundles", [])) if previous else []
    seq = int(previous.get("seq", 0)) + 1 if previous else 1
    old_tips = set(previous.get("refs", {}).values()) if previous else set()
    negatives = sorted(old_tips & here)
    new_tips = bool(set(refs.values()) - old_tips)
    format_changed = previous is not None and previous.get("object_format") != object_format
    if not refs or (prev_bundles and not new_tips and not format_changed):
        return HistoryPlan(False, False, seq, [], [], prev_bundles, [])  # everything is in the bundles already
    full = not prev_bundles or not negatives or len(prev_bundles) >= max_bundles or format_changed
    if full:
        return HistoryPlan(True, True, seq, sorted(refs), [], [], prev_bundles)
    return HistoryPlan(True, False, seq, sorted(refs), negatives, prev_bundles, [])


def part_names(seq: int, count: int) -> list[str]:
    base = f"{BUNDLES_DIR}/{seq:06d}.bundle"
    return [base] if count <= 1 else [f"{base}.{i:03d}" for i in range(count)]


# ---------------------------------------------------------------- local copy of history.json


def load_state(home: Path, project: str, identity: str) -> dict[str, Any] | None:
    """What we last wrote to the history folder at ``identity``; None when unknown (or another folder)."""
    data = statefile.read_json(paths.history_state_path(home, project), default=None)
    if not isinstance(data, dict) or data.get("target") != identity or data.get("format") != FORMAT:
        return None
    return data


def save_state(home: Path, project: str, identity: str, state: Mapping[str, Any]) -> None:
    statefile.atomic_write(paths.history_state_path(home, project),
                           json.dumps({**state, "target": identity}, separators=(",", ":")).encode())


def parse_state(data: bytes | None) -> dict[str, Any] | None:
    """A downloaded ``history.json``; None when missing or not ours."""
    if not data:
        return None
    try:
        state = json.loads(data)
    except ValueError:
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("bundles"), list):
        return None
    return state


# ---------------------------------------------------------------- upload, in two steps


@dataclass
class UploadResult:
    text: str  # for the record and the log
    bytes: int = 0


Attempt = Callable[[Callable[[Any], Any], Any], Any]  # engine's retrying call: attempt(fn, arg)


@dataclass
class Prepared:
    """The first half of an upload: the repository read, the new bundle (if any) already uploaded."""

    identity: str
    first_contact: bool  # no local copy of history.json: it was fetched (or there is none)
    previous: dict[str, Any] | None
    repo: RepoState
    plan: HistoryPlan
    bundle: dict[str, Any] | None = None  # the uploaded bundle's entry
    sent: int = 0


def prepare(home: Path, project: str, repo: Path, target: Target, attempt: Attempt, *, head_commit: str,
            max_bundles: int, part_bytes: int) -> Prepared:
    """Read the repository and upload the bundle its new commits need. Needs nothing from the file sync,
    so the engine runs it alongside. Raises what the target (or git) raises."""
    identity = target.location.identity
    previous = load_state(home, project, identity)
    first_contact = previous is None
    if previous is None:
        # A new HOME (restored, or the history was made elsewhere): continue the chain that is there.
        previous = parse_state(attempt(target.download, STATE_FILE))
    state = read_repo(repo, head_commit)
    old_tips = set((previous or {}).get("refs", {}).values())
    # Tips this HOME uploaded itself are here (a commit is only lost to gc after months in no ref);
    # a chain made elsewhere is checked, and so is ours when git says a tip is gone.
    here = present(repo, old_tips) if first_contact else old_tips
    p = plan(previous, state.refs, state.object_format, here, max_bundles)
    prepared = Prepared(identity, first_contact, previous, state, p)
    if not p.bundle:
        return prepared
    scratch = paths.scratch_dir(home)
    scratch.mkdir(parents=True, exist_ok=True)
    tmp = scratch / f"{quote_name(project)}-{os.getpid()}-{threading.get_ident()}.bundle"
    try:
        try:
            made = make_bundle(repo, tmp, p.positives, p.negatives)
        except HistoryError:
            if first_contact:
                raise
            p = plan(previous, state.refs, state.object_format, present(repo, old_tips), max_bundles)
            prepared.plan = p
            made = make_bundle(repo, tmp, p.positives, p.negatives)
        if not made:
            return prepared
        size = tmp.stat().st_size
        names = part_names(p.seq, max(1, -(-size // part_bytes)))
        if previous is None:
            attempt(target.mkdirs, BUNDLES_DIR)
        digest = hashlib.sha256()
        with open(tmp, "rb") as f:
            for name in names:
                chunk = f.read(part_bytes)
                digest.update(chunk)
                attempt(lambda item: target.upload(*item), (name, chunk))
                prepared.sent += len(chunk)
        prepared.bundle = {"seq": p.seq, "parts": names, "bytes": size, "sha256": digest.hexdigest(),
                           "full": p.full, "created": now_iso()}
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    return prepared


def finish(home: Path, project: str, repo: Path, target: Target, attempt: Attempt, prepared: Prepared, *,
           remote_files: Mapping[str, Any], files_digest: str) -> UploadResult:
    """Write ``history.json`` for the new bundle and the files the synced folder now holds (last, so a
    failure before it leaves the previous history whole); then drop what a full bundle replaced."""
    p, previous, new_bundle = prepared.plan, prepared.previous, prepared.bundle
    now = prepared.repo.describe(repo, remote_files, files_digest)
    if new_bundle is None and comparable(previous) == comparable(now):
        if prepared.first_contact and previous is not None:
            save_state(home, project, prepared.identity, previous)
        return UploadResult("unchanged")
    if new_bundle is not None:
        bundles = ([] if p.full else list(p.keep)) + [new_bundle]
        seq = p.seq
    else:
        bundles = list((previous or {}).get("bundles", []))
        seq = int((previous or {}).get("seq", 0))
    state = {"format": FORMAT, "project": project, "updated": now_iso(), "seq": seq, "bundles": bundles, **now}
    attempt(lambda item: target.upload(*item), (STATE_FILE, json.dumps(state, indent=1).encode()))
    save_state(home, project, prepared.identity, state)

    dropped = 0
    if new_bundle is not None and p.full:
        listed = {n for b in bundles for n in b["parts"]}
        stale = {n for b in p.drop for n in b.get("parts", [])}
        for entry in target.list_dir(BUNDLES_DIR) or []:  # also orphans of failed attempts
            if not entry.is_dir and f"{BUNDLES_DIR}/{entry.name}" not in listed:
                stale.add(f"{BUNDLES_DIR}/{entry.name}")
        for name in sorted(stale - listed):
            try:
                target.delete(name)
                dropped += 1
            except Exception:  # noqa: BLE001 - left for the next full upload to clean
                pass
    refs = f"{len(now['refs'])} ref{'s' if len(now['refs']) != 1 else ''}"
    if new_bundle is None:
        changed_refs = comparable(previous) is None or (previous or {}).get("refs") != now["refs"]
        return UploadResult(f"{refs} updated (no new objects)" if changed_refs else "working tree state updated")
    kind = "full bundle" if p.full else "bundle"
    parts = f" in {len(new_bundle['parts'])} parts" if len(new_bundle["parts"]) > 1 else ""
    extra = f", {dropped} old removed" if dropped else ""
    return UploadResult(f"{kind} {p.seq} ({human_bytes(prepared.sent)}{parts}), {refs}{extra}", prepared.sent)


def quote_name(project: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", project)


# ---------------------------------------------------------------- rebuild


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
