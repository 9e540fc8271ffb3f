"""A hook's report, and the state it means: one table per agent CLI.

Every name below was checked against the pinned CLI versions (the hook names
in their bundles, and the payloads a real run sends):

- Claude Code 2.1.332: ``SessionStart``, ``UserPromptSubmit``,
  ``PermissionRequest`` (sent as the permission dialog opens),
  ``PostToolUse``/``PostToolUseFailure``, ``Notification`` with
  ``notification_type`` ``permission_prompt`` (6 s after the dialog opens,
  so ``PermissionRequest`` is what makes "needs input" immediate),
  ``idle_prompt``, ``elicitation_dialog``..., ``Stop``, ``SessionEnd``.
- Codex 0.171.0: hooks ``SessionStart``, ``UserPromptSubmit``,
  ``PermissionRequest``, ``PostToolUse``, ``Stop`` (``hooks.json``; each
  hook must be trusted by hash, see ``lib.agents.codex``), and the legacy
  ``notify`` program (``agent-turn-complete`` only, also for Codex's own
  background threads such as the title: those are told apart by thread id).
- Gemini CLI 0.61.0: ``SessionStart``, ``BeforeAgent``, ``Notification``
  (``notification_type`` ``ToolPermission``), ``AfterTool``, ``AfterAgent``,
  ``SessionEnd``.
- OpenCode 1.18.33: its plugin (``hooks/opencode-plugin.js``) follows
  ``session.status``, ``permission.asked``/``replied``, ``question.*`` and
  ``session.error`` for every OpenCode session of the process (subagents
  included) and reports one summary: ``start``, ``working``,
  ``needs_input``, ``done``, ``error``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lib.attention.states import Attention

AGENTS = ("claude", "codex", "gemini", "opencode")
MAX_DETAIL = 160
_EVENT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# When a report's body was cut (a huge tool output), its first fields are still readable.
_FIELD = re.compile(rb'"(hook_event_name|notification_type|tool_name|session_id|thread-id|type|message|detail)"'
                    rb'\s*:\s*"((?:[^"\\]|\\.){0,400})"')


@dataclass(frozen=True)
class Report:
    """One hook call: who (the CLI), what (its event name), its payload, and when it ran."""

    agent: str
    event: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    t: float | None = None  # the hook's own clock (seconds since the epoch), to drop late arrivals


@dataclass(frozen=True)
class Outcome:
    """What a report means: a state (``None``: nothing changes), why, and facts learnt on the way."""

    state: Attention | None
    detail: str = ""
    only_from: frozenset[Attention] | None = None  # apply only when the session is in one of these
    thread: str | None = None  # the agent's own session id (learnt at its start)


def valid_event(agent: str, event: str) -> bool:
    return agent in AGENTS and bool(_EVENT_RE.match(event or ""))


def parse_payload(body: bytes) -> dict[str, Any]:
    """The hook's JSON payload; the readable first fields of a cut or broken one; ``{}`` for none."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        found: dict[str, Any] = {}
        for match in _FIELD.finditer(body):
            name = match.group(1).decode()
            if name not in found:
                try:
                    found[name] = json.loads(b'"' + match.group(2) + b'"')
                except ValueError:
                    continue
        return found
    return data if isinstance(data, dict) else {}


def clean(text: Any, limit: int = MAX_DETAIL) -> str:
    """One line of plain text, at most ``limit`` characters."""
    if not isinstance(text, str):
        return ""
    line = _CONTROL.sub(" ", text).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _tool(payload: Mapping[str, Any]) -> str:
    """``Bash: touch marker``: the tool and what it is about to do."""
    name = clean(payload.get("tool_name"), 40)
    args = payload.get("tool_input")
    what = ""
    if isinstance(args, dict):
        for key in ("command", "cmd", "file_path", "path", "url", "pattern"):
            if isinstance(args.get(key), str):
                what = args[key]
                break
            if isinstance(args.get(key), list):
                what = " ".join(str(a) for a in args[key])
                break
    return clean(f"{name}: {what}" if name and what else name or what)


def _thread(payload: Mapping[str, Any]) -> str | None:
    value = payload.get("session_id")
    return value if isinstance(value, str) and value else None


def _claude(event: str, p: Mapping[str, Any]) -> Outcome:
    if event == "SessionStart":
        return Outcome(Attention.IDLE, thread=_thread(p))
    if event == "UserPromptSubmit":
        return Outcome(Attention.WORKING)
    if event == "PermissionRequest":
        return Outcome(Attention.NEEDS_INPUT, f"permission: {_tool(p)}" if _tool(p) else "permission")
    if event in ("PostToolUse", "PostToolUseFailure"):
        return Outcome(Attention.WORKING)
    if event == "Notification":
        kind = p.get("notification_type")
        if kind in ("permission_prompt", "elicitation_dialog", "elicitation_url_dialog", "agent_needs_input",
                    "worker_permission_prompt"):
            return Outcome(Attention.NEEDS_INPUT, clean(p.get("message")) or str(kind))
        if kind in ("idle_prompt", "agent_completed"):
            # Sent a while after a turn ended: only a "working" that missed its Stop becomes "done".
            return Outcome(Attention.DONE, clean(p.get("message")), only_from=frozenset({Attention.WORKING}))
        return Outcome(None)
    if event == "Stop":
        return Outcome(Attention.DONE, clean(p.get("last_assistant_message")))
    if event == "SessionEnd":
        return Outcome(Attention.EXITED)
    return Outcome(None)


def _codex(event: str, p: Mapping[str, Any], known_thread: str | None) -> Outcome:
    if event == "SessionStart":
        return Outcome(Attention.IDLE, thread=_thread(p))
    if event == "UserPromptSubmit":
        return Outcome(Attention.WORKING, thread=_thread(p))
    if event == "PermissionRequest":
        return Outcome(Attention.NEEDS_INPUT, f"permission: {_tool(p)}" if _tool(p) else "permission")
    if event == "PostToolUse":
        return Outcome(Attention.WORKING)
    if event == "Stop":
        return Outcome(Attention.DONE, clean(p.get("last_assistant_message")))
    if event == "notify":
        if p.get("type") != "agent-turn-complete":
            return Outcome(None)
        thread = p.get("thread-id")
        if known_thread and thread and thread != known_thread:
            return Outcome(None)  # about another thread of the agent (Codex's title job): ignore
        return Outcome(Attention.DONE, clean(p.get("last-assistant-message")))
    return Outcome(None)


def _gemini(event: str, p: Mapping[str, Any]) -> Outcome:
    if event == "SessionStart":
        return Outcome(Attention.IDLE, thread=_thread(p))
    if event == "BeforeAgent":
        return Outcome(Attention.WORKING)
    if event == "Notification":
        if p.get("notification_type") not in (None, "ToolPermission"):
            return Outcome(None)
        details = p.get("details") if isinstance(p.get("details"), dict) else {}
        what = clean(details.get("command") or details.get("title") or p.get("message"))
        return Outcome(Attention.NEEDS_INPUT, f"permission: {what}" if what else "permission")
    if event in ("AfterTool", "BeforeTool"):
        return Outcome(Attention.WORKING)
    if event == "AfterAgent":
        return Outcome(Attention.DONE, clean(p.get("prompt_response")))
    if event == "SessionEnd":
        return Outcome(Attention.EXITED)
    return Outcome(None)


_OPENCODE = {
    "start": Attention.IDLE,
    "working": Attention.WORKING,
    "needs_input": Attention.NEEDS_INPUT,
    "done": Attention.DONE,
    "error": Attention.DONE,
}


def _opencode(event: str, p: Mapping[str, Any]) -> Outcome:
    state = _OPENCODE.get(event)
    if state is None:
        return Outcome(None)
    detail = clean(p.get("detail"))
    return Outcome(state, f"error: {detail}" if event == "error" and detail else detail)


def interpret(report: Report, known_thread: str | None = None) -> Outcome:
    """What ``report`` means. ``known_thread`` is the agent's session id learnt at its start."""
    p = report.payload
    if report.agent == "claude":
        return _claude(report.event, p)
    if report.agent == "codex":
        return _codex(report.event, p, known_thread)
    if report.agent == "gemini":
        return _gemini(report.event, p)
    if report.agent == "opencode":
        return _opencode(report.event, p)
    return Outcome(None)
