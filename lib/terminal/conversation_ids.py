"""Which agent conversation each terminal session holds, so Resume continues it.

Claude Code and Gemini CLI take a conversation id chosen up front
(``Agent.new_conversation_args``), confirmed here once it is in the CLI's
store; Codex and OpenCode choose their own, found in their stores by the
files a session's processes hold open, else by folder and time
(``match_conversations``).

Separate from ``lib.terminal.recorder``, which calls it on every pass and at
start: this is the rule that says whose a conversation is (pure, in
``match_conversations``) plus the lookups it needs (the agents' stores,
``/proc``), and none of the threading or files of the records.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lib.agents import get_agent
from lib.agents.base import Conversation
from lib.terminal import procs

log = logging.getLogger(__name__)

SLACK_S = 5.0  # clock slack between a session's start and its CLI's own timestamps


@dataclass(frozen=True)
class Pending:
    """A session of an agent that picks its own conversation ids, whose conversation is not known yet."""

    id: str
    created_at: float


def match_conversations(pending: Iterable[Pending], candidates: Iterable[Conversation],
                        slack: float = SLACK_S) -> dict[str, str]:
    """Session id -> conversation id, for sessions of one agent in one folder.

    ``candidates`` are the conversations of that folder in the CLI's store that
    no other session has. A conversation written since a session started may
    be its own; when several sessions could own one, it goes to the one
    started last before the conversation began (Codex stamps a conversation
    with its TUI's start, OpenCode with its first message), and when it began
    before all of them (a conversation continued with ``--continue``) it is
    left alone rather than guessed.
    """
    free = sorted(pending, key=lambda p: p.created_at)
    found: dict[str, str] = {}
    for conversation in sorted(candidates, key=lambda c: c.started_at):
        owners = [p for p in free if conversation.updated_at >= p.created_at - slack]
        if len(owners) > 1:
            owners = [p for p in owners if p.created_at - slack <= conversation.started_at][-1:]
        if owners:
            found[owners[0].id] = conversation.id
            free.remove(owners[0])
    return found


def _lookup(agent_id: str, home: Path, folder: Path, since: float) -> list[Conversation]:
    agent = get_agent(agent_id)
    if agent is None or agent.conversations is None:
        return []
    try:
        return agent.conversations(home, folder, since)
    except Exception:  # a CLI's store in an unexpected shape must not stop the recording
        log.exception("Reading %s's conversations failed", agent_id)
        return []


@dataclass
class Known:
    """The conversation facts a lookup settles, for a session or a record."""

    id: str
    agent: str
    folder: Path
    created_at: float
    conversation_id: str | None
    conversation_known: bool
    sid: int | None = None  # a running session's process session (its processes' files tell)


def open_files(sid: int) -> set[str]:
    """Paths of the files the processes of session ``sid`` hold open."""
    paths = set()
    for pid in procs.session_members(sid):
        try:
            fds = os.scandir(f"/proc/{pid}/fd")
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    paths.add(os.readlink(fd.path))
                except OSError:
                    pass
    return paths


def settle_conversations(items: list[Known], home: Path, claimed: set[str]) -> list[Known]:
    """Confirm chosen ids found in the stores and find the others; returns the items that changed."""
    changed = []
    groups: dict[tuple[str, Path], list[Known]] = {}
    for item in items:
        agent = get_agent(item.agent)
        if item.conversation_known or agent is None or agent.conversations is None:
            continue
        groups.setdefault((item.agent, item.folder), []).append(item)
    for (agent_id, folder), group in groups.items():
        found = _lookup(agent_id, home, folder, min(i.created_at for i in group) - SLACK_S)
        ids = {c.id for c in found}
        chosen = [i for i in group if i.conversation_id]
        for item in chosen:
            if item.conversation_id in ids:
                item.conversation_known = True
                changed.append(item)
        taken = claimed | {i.conversation_id for i in chosen if i.conversation_id}
        unknown = {i.id: i for i in group if not i.conversation_id}
        by_path = {c.path: c for c in found if c.path and c.id not in taken}
        for item in list(unknown.values()):  # the conversation file its own processes hold open (Codex)
            if item.sid is not None and by_path:
                held = [by_path[p] for p in open_files(item.sid) if p in by_path]
                if len(held) == 1:
                    item.conversation_id, item.conversation_known = held[0].id, True
                    taken.add(held[0].id)
                    del unknown[item.id]
                    changed.append(item)
        # By folder and time (``match_conversations``): for a running session only where no file
        # can tell (OpenCode's one database); a file nobody holds open is no running session's yet.
        live = any(i.sid is not None for i in unknown.values())
        pool = [c for c in found if c.id not in taken and not (live and c.path)]
        if unknown and pool:
            matched = match_conversations([Pending(i.id, i.created_at) for i in unknown.values()], pool)
            for session_id, conversation_id in matched.items():
                item = unknown[session_id]
                item.conversation_id, item.conversation_known = conversation_id, True
                changed.append(item)
    return changed
