"""``history.json`` and the plan of the next bundle: which bundle one upload makes, decided without I/O.

``history.json`` (format ``FORMAT``) lists the bundles in order and what the
repository looked like (``gitrepo.RepoState.describe``); a local copy of the
last one written (``load_state``/``save_state``) saves a download on every
commit. ``plan`` decides from the previous ``history.json``, the refs now and
which uploaded tips this repository has, whether a bundle is needed and
whether it is incremental or full. Separate from ``githistory``, which runs
git and the uploads around it, so the rule can be read and tested alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib import statefile
from lib.sync import paths

FORMAT = "coda-history/1"
STATE_FILE = "history.json"
BUNDLES_DIR = "bundles"


# ---------------------------------------------------------------- history.json


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


def comparable(state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The part of a state that says whether anything changed (not bundles, times or counters)."""
    if not state:
        return None
    keys = ("refs", "symrefs", "head", "object_format", "config", "worktree", "files_digest")
    return {k: state.get(k) for k in keys}


# ---------------------------------------------------------------- the plan (pure)


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
