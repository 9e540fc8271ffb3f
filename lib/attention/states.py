"""The attention states and how each one is shown: a word, an icon and a colour, never colour alone."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lib.timefmt import age


class Attention(StrEnum):
    """What a session is doing, from the user's point of view."""

    NEEDS_INPUT = "needs_input"  # a permission prompt, a question, an elicitation, a bell
    WORKING = "working"  # the agent thinks or runs tools
    DONE = "done"  # the agent finished its turn and waits for the next instruction
    RUNNING = "running"  # a shell runs a command
    IDLE = "idle"  # nothing asked yet, or a shell at its prompt
    EXITED = "exited"  # the program ended


@dataclass(frozen=True)
class Look:
    word: str
    icon: str  # Material icon name (Streamlit ``:material/<icon>:``)
    emoji: str  # for places without Markdown (tables, notifications)
    color: str  # Streamlit Markdown colour
    rank: int  # sort order: needs input first


LOOKS: dict[Attention, Look] = {
    Attention.NEEDS_INPUT: Look("needs input", "back_hand", "✋", "orange", 0),
    Attention.DONE: Look("done", "check_circle", "✅", "green", 1),
    Attention.WORKING: Look("working", "progress_activity", "⏳", "blue", 2),
    Attention.RUNNING: Look("running", "play_circle", "▶️", "blue", 3),
    Attention.IDLE: Look("idle", "pause_circle", "💤", "gray", 4),
    Attention.EXITED: Look("exited", "stop_circle", "⏹️", "gray", 5),
}

# States a tab shows a badge for: the others are the quiet default.
BADGED = frozenset({Attention.NEEDS_INPUT, Attention.DONE, Attention.WORKING, Attention.EXITED})


def look(state: str | None) -> Look:
    try:
        return LOOKS[Attention(state)]
    except ValueError:
        return LOOKS[Attention.IDLE]


def rank(state: str | None, since: float | None) -> tuple[int, float]:
    """Sort key: needs input first (longest waiting first), then done, working... ."""
    return look(state).rank, since or 0.0


def badge_markdown(state: str | None, since: float | None, now: float) -> str:
    """A Streamlit Markdown badge: ``:orange-badge[:material/back_hand: needs input · 2m]``."""
    shown = look(state)
    waited = f" · {age(now - since)}" if since and state in (Attention.NEEDS_INPUT, Attention.DONE) else ""
    return f":{shown.color}-badge[:material/{shown.icon}: {shown.word}{waited}]"


def plain_text(state: str | None, since: float | None, now: float) -> str:
    """``✋ needs input (2m)``: for tables and anywhere without Markdown."""
    shown = look(state)
    return f"{shown.emoji} {shown.word}" + (f" ({age(now - since)})" if since else "")
