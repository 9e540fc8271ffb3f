"""Tokens per session: read from each model response as it streams past, summed per session and day.

Every response carries its usage, in its API's own place: Anthropic in
``message_start`` and ``message_delta`` events, Responses in
``response.completed``, chat completions in the last chunk (the gateway asks
for it), Gemini in each chunk's ``usageMetadata``. A ``UsageTap`` watches the
bytes on their way to the CLI without holding them back: it keeps only an
unfinished SSE line (or, for a plain JSON answer, the body up to a cap) and
parses only lines that mention usage. The ``UsageMeter`` sums what the taps
found per session and per calendar day; it lives in memory, like the
sessions, and starts from zero when the app restarts.

Counting: ``input_tokens`` is every prompt token, cached ones included
(Anthropic reports cache reads and writes apart from ``input_tokens``; they
are added), ``cached_tokens`` the part read from a cache, ``output_tokens``
everything generated (Gemini's thoughts included).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from lib.gateway.wire import ANTHROPIC, CHAT, GEMINI, RESPONSES

MAX_LINE = 8 * 1024 * 1024  # an SSE line longer than this is passed on but not parsed
MAX_JSON = 16 * 1024 * 1024  # likewise a plain JSON answer


@dataclass
class Usage:
    """Tokens of one call, or a sum of calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.calls += other.calls

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class Budget:
    """A daily token budget per session; ``refuse`` turns calls away once it is spent."""

    daily_tokens: int
    refuse: bool = False
    warn_at: float = 0.8


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


class UsageTap:
    """Finds the usage in one response's bytes, fed chunk by chunk; never holds a chunk back."""

    def __init__(self, fmt: str, content_type: str) -> None:
        self.fmt = fmt
        kind = content_type.split(";")[0].strip().lower()
        self.sse = kind == "text/event-stream"
        self.json = not self.sse and kind.endswith("json")
        self._pending = bytearray()
        self._overflow = False
        self._fields: dict[str, int] = {}
        self.seen = False

    def feed(self, chunk: bytes) -> None:
        if self.sse:
            self._feed_sse(chunk)
        elif self.json and not self._overflow:
            if len(self._pending) + len(chunk) > MAX_JSON:
                self._overflow = True
                self._pending.clear()
            else:
                self._pending += chunk

    def _feed_sse(self, chunk: bytes) -> None:
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            if newline < 0:
                if not self._overflow:
                    if len(self._pending) + len(chunk) - start > MAX_LINE:
                        self._overflow = True
                        self._pending.clear()
                    else:
                        self._pending += chunk[start:]
                return
            if self._pending or self._overflow:
                line = bytes(self._pending) + chunk[start:newline] if not self._overflow else b""
                self._pending.clear()
                self._overflow = False
            else:
                line = chunk[start:newline]
            start = newline + 1
            if line.startswith(b"data:") and b'"usage' in line:
                try:
                    self._found(json.loads(line[5:]))
                except ValueError:
                    pass

    def finish(self) -> Usage | None:
        """The call's usage once the response ended; ``None`` when it reported none."""
        if self.sse and self._pending and not self._overflow:
            line = bytes(self._pending).strip()
            if line.startswith(b"data:") and b'"usage' in line:
                try:
                    self._found(json.loads(line[5:]))
                except ValueError:
                    pass
        elif self.json and self._pending:
            try:
                doc = json.loads(bytes(self._pending))
            except ValueError:
                doc = None
            for item in doc if isinstance(doc, list) else [doc]:
                self._found(item)
        self._pending.clear()
        if not self.seen:
            return None
        f = self._fields
        if self.fmt == ANTHROPIC:
            cached = f.get("cache_read_input_tokens", 0)
            prompt = f.get("input_tokens", 0) + f.get("cache_creation_input_tokens", 0) + cached
            return Usage(prompt, f.get("output_tokens", 0), cached, 1)
        return Usage(f.get("input", 0), f.get("output", 0), f.get("cached", 0), 1)

    def _found(self, doc: Any) -> None:
        """Take the usage out of one parsed event (or JSON answer)."""
        if not isinstance(doc, dict):
            return
        if self.fmt == ANTHROPIC:
            usage = _get(doc, "message", "usage") if doc.get("type") == "message_start" else doc.get("usage")
            if isinstance(usage, dict):
                self.seen = True
                for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                            "output_tokens"):
                    # Counts in later events are running totals: keep the largest.
                    self._fields[key] = max(self._fields.get(key, 0), _int(usage.get(key)))
        elif self.fmt == RESPONSES:
            usage = _get(doc, "response", "usage") if "response" in doc else doc.get("usage")
            if isinstance(usage, dict):
                self._set(usage.get("input_tokens"), usage.get("output_tokens"),
                          _get(usage, "input_tokens_details", "cached_tokens"))
        elif self.fmt == CHAT:
            usage = doc.get("usage")
            if isinstance(usage, dict):
                self._set(usage.get("prompt_tokens"), usage.get("completion_tokens"),
                          _get(usage, "prompt_tokens_details", "cached_tokens"))
        elif self.fmt == GEMINI:
            usage = doc.get("usageMetadata")
            if isinstance(usage, dict):
                self._set(usage.get("promptTokenCount"),
                          _int(usage.get("candidatesTokenCount")) + _int(usage.get("thoughtsTokenCount")),
                          usage.get("cachedContentTokenCount"))

    def _set(self, prompt: Any, output: Any, cached: Any) -> None:
        """The latest report wins: each is the running total of the call so far."""
        self.seen = True
        self._fields = {"input": _int(prompt), "output": _int(output), "cached": _int(cached)}


def today(clock: Callable[[], float] = time.time) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(clock()))


class UsageMeter:
    """Usage per session (all time and per day) and per day over all sessions; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Usage] = {}
        self._session_days: dict[tuple[str, str], Usage] = {}
        self._days: dict[str, Usage] = {}

    def record(self, session_id: str, usage: Usage) -> None:
        day = today(self._clock)
        with self._lock:
            for bucket, key in ((self._sessions, session_id), (self._session_days, (session_id, day)),
                                (self._days, day)):
                bucket.setdefault(key, Usage()).add(usage)  # type: ignore[attr-defined]

    def session(self, session_id: str) -> Usage:
        """Everything ``session_id`` used since it started."""
        with self._lock:
            found = self._sessions.get(session_id)
            return Usage(**asdict(found)) if found else Usage()

    def session_today(self, session_id: str) -> Usage:
        with self._lock:
            found = self._session_days.get((session_id, today(self._clock)))
            return Usage(**asdict(found)) if found else Usage()

    def today_total(self) -> Usage:
        """Every session's usage today, closed ones included."""
        with self._lock:
            found = self._days.get(today(self._clock))
            return Usage(**asdict(found)) if found else Usage()

    def for_session(self, session_id: str, budget: Budget | None = None) -> dict[str, Any]:
        """What ``GET /api/sessions`` shows per session: totals, today's tokens, the budget state."""
        doc: dict[str, Any] = self.session(session_id).to_dict()
        spent = self.session_today(session_id).total_tokens
        doc["today_tokens"] = spent
        if budget is not None and budget.daily_tokens > 0:
            doc["budget"] = {"daily_tokens": budget.daily_tokens, "refuse": budget.refuse,
                             "state": budget_state(spent, budget)}
        return doc


def budget_state(spent: int, budget: Budget) -> str:
    """``ok``, ``warn`` (past ``warn_at`` of the budget) or ``over``."""
    if spent >= budget.daily_tokens:
        return "over"
    if spent >= budget.daily_tokens * budget.warn_at:
        return "warn"
    return "ok"


@dataclass(frozen=True)
class BudgetReport:
    """One session's budget in words, for the Sessions page (which only draws it)."""

    state: str  # ok, warn or over (``budget_state``)
    cell: str  # the "budget" column of the sessions table
    notice: str  # a sentence above the session's terminal; empty while the state is ok
    refused: bool = False  # over budget and the gateway turns its calls away
    badge: str = ""  # a Streamlit Markdown badge for the session's tab; empty while the state is ok


def budget_report(usage: Mapping[str, Any]) -> BudgetReport | None:
    """``usage`` as ``UsageMeter.for_session`` gives it, put in words; ``None`` when there is no budget.

    Built from the same document ``GET /api/sessions`` serves, so the page and
    the API can never disagree about a session's state.
    """
    budget = usage.get("budget")
    if not isinstance(budget, Mapping):
        return None
    spent, daily = int(usage.get("today_tokens") or 0), int(budget.get("daily_tokens") or 0)
    if daily <= 0:
        return None
    state, refuse = str(budget.get("state")), bool(budget.get("refuse"))
    percent = spent * 100 // daily
    against = f"{spent:,} of {daily:,} tokens today"
    if state == "over":
        word = "over budget — calls refused" if refuse else "over budget"
        then = ("Its model calls are refused until tomorrow: raise or turn off the budget in the sidebar's "
                "Settings to go on now." if refuse else
                "Its model calls still go through: turn on \"Refuse calls over budget\" in the sidebar's Settings "
                "to stop them.")
        return BudgetReport(state, f"{against} · {word}", f"This session is {word}: {against}. {then}", refuse,
                            f":red-badge[:material/block: {word}]")
    if state == "warn":
        then = ("Once it is spent, its model calls are refused until tomorrow." if refuse else
                "Past it, calls still go through: this budget only warns.")
        return BudgetReport(state, f"{against} ({percent} %) · warn",
                            f"This session used {percent} % of its daily token budget ({against}). {then}",
                            badge=f":orange-badge[:material/data_usage: {percent} % of budget]")
    return BudgetReport(state, f"{against} ({percent} %)", "")


def budget_caption(budget: Budget | None) -> str:
    """The budget every session gets, in words ("" without one): next to the day's total."""
    if budget is None or budget.daily_tokens <= 0:
        return ""
    then = "calls refused past it" if budget.refuse else "a warning only, calls go on past it"
    return f"Budget per session: {budget.daily_tokens:,} tokens a day ({then})."
