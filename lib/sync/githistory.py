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

This module is the upload (``prepare``, ``finish``). The format of
``history.json`` and the pure decision which bundle to make are
``historyplan``; reading a repository, bundling it and rebuilding one from
bundles for a restore are git's side (``gitrepo``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.sync import paths
from lib.sync.gitrepo import HistoryError, RepoState, make_bundle, present, read_repo
from lib.sync.historyplan import (
    BUNDLES_DIR,
    FORMAT,
    STATE_FILE,
    HistoryPlan,
    comparable,
    load_state,
    parse_state,
    part_names,
    plan,
    save_state,
)
from lib.sync.records import human_bytes, now_iso
from lib.sync.targets import Target


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
