"""One session's attention state, from its agent's hooks and from its terminal.

Sources, strongest first:

1. the agent's hooks (``report``): what the CLI itself says it is doing;
2. the terminal: for a plain shell, who holds the PTY's foreground (the
   shell at its prompt: ``idle``; any other program: ``running``), OSC 133
   prompt marks when the shell emits them (they win over the foreground
   check), and the bell (``needs input`` until the user types: ``make;
   printf '\a'``), except right after a keystroke (readline's bell on Tab);
   a quiet period decides only when the foreground is unknown;
3. the keyboard: Enter while "needs input" means the question was answered
   (``working``, until the agent says more); Esc or Ctrl-C that it was
   dismissed (``idle``: the CLIs then cancel and wait, and no hook says so);
4. silence: an agent "working" whose screen has not changed for
   ``QUIET_S`` stopped without saying so (every CLI animates while it
   works): ``idle``;
5. the program's exit.

Everything here is cheap enough for the PTY read path: an agent session only
notes the time of each read; a shell session also scans for ESC ``]`` and
BEL with two ``bytes.find`` calls before looking closer.

Thread-safe: reports come from the event loop, output from the loop, the
exit from the reaper thread, ticks from the hub's thread. ``on_change`` is
called outside the lock after every change of what the page shows.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from lib.attention.events import Outcome, Report, interpret
from lib.attention.states import Attention

QUIET_S = 20.0  # an agent "working" with a still screen this long has stopped
SHELL_QUIET_S = 2.0  # without a foreground to ask: output this recent means "running"
FOREGROUND_EVERY_S = 0.1  # at most this often from the read path (the hub ticks too)
BELL_AFTER_INPUT_S = 1.0  # a bell this soon after a keystroke answers it (readline on Tab): not a call
_CLOCK_SLACK_S = 600.0  # a report's own time stamp further off than this is not trusted
_ENTER = (b"\r", b"\n")
_DISMISS = (b"\x1b", b"\x03")  # Esc alone (not the start of an arrow key's sequence), Ctrl-C
_HOOK_STATES = frozenset({Attention.WORKING, Attention.NEEDS_INPUT, Attention.DONE})

Foreground = Callable[[], "int | None"]


class TerminalScanner:
    """Finds OSC 133 marks and real bells in a byte stream read in arbitrary pieces.

    A BEL that ends an OSC (window titles end that way) is not a bell. An OSC
    may span reads; only its first bytes are kept (enough to read ``133;X``).

    A big read is a program writing as fast as it can: only its end can hold
    the next prompt, so only its last ``TAIL`` bytes are scanned, from the
    first terminator on (it may end an OSC that began before them). Searching
    a whole 256 KiB burst for ESC ``]`` costs about half a millisecond; its
    tail, microseconds.
    """

    _TOKENS = re.compile(rb"\x1b\]|\x07|\x1b\\")
    _KEEP = 16
    FULL = 16 * 1024  # reads up to this size are scanned whole
    TAIL = 4 * 1024

    def __init__(self) -> None:
        self._osc: bytes | None = None  # inside an OSC: its first bytes so far
        self._carry = b""  # a lone ESC at the end of the previous read

    def feed(self, data: bytes) -> list[str]:
        """``"bell"`` and ``"133;A"``..``"133;D"`` events found in ``data``, in order."""
        if self._carry:
            data, self._carry = self._carry + data, b""
        if data.endswith(b"\x1b"):  # the start of ESC ] or of ESC \ : decided with the next read
            data, self._carry = data[:-1], b"\x1b"
        if len(data) > self.FULL:
            tail = data[-self.TAIL:]
            ends = [i + n for i, n in ((tail.find(b"\x07"), 1), (tail.find(b"\x1b\\"), 2)) if i >= 0]
            data, self._osc = (tail[min(ends):] if ends else tail), None
        if self._osc is None and b"\x07" not in data and b"\x1b]" not in data:
            return []
        events: list[str] = []
        pos = 0
        for match in self._TOKENS.finditer(data):
            token = match.group()
            if self._osc is not None:
                text = (self._osc + data[pos:match.start()])[: self._KEEP]
                self._osc = None
                if token == b"\x1b]":  # an unterminated OSC followed by a new one
                    self._osc = b""
                elif text.startswith(b"133;") and len(text) > 4:
                    events.append("133;" + chr(text[4]))
            elif token == b"\x07":
                events.append("bell")
            elif token == b"\x1b]":
                self._osc = b""
            pos = match.end()
        if self._osc is not None:
            self._osc = (self._osc + data[pos:])[: self._KEEP]
        return events


class AttentionTracker:
    """The attention state of one terminal session."""

    def __init__(self, agent: str, *, shell: bool, on_change: Callable[[], None] | None = None,
                 now: float | None = None) -> None:
        self.agent = agent
        self.shell = shell
        self.state = Attention.IDLE
        self.since = time.time() if now is None else now
        self.detail = ""
        self.event = "start"  # what set the state last: a hook's event, "input", "bell", "prompt"...
        self._on_change = on_change
        self._lock = threading.Lock()
        self._last_t = 0.0  # newest accepted report's own time stamp
        self._thread: str | None = None  # the agent's own session id
        self._last_output = time.monotonic()
        self._last_input = 0.0
        self._foreground: Foreground | None = None
        self._leader: int | None = None
        self._last_foreground_check = 0.0
        self._scanner = TerminalScanner() if shell else None
        self._marks = False  # the shell emits OSC 133: its marks decide running/idle
        self._hooked = False  # in a shell: an agent in front reported itself; its states stand
        self._ended = False

    # --- reading ---------------------------------------------------------------
    def fields(self) -> dict[str, Any]:
        """What ``GET /api/sessions`` shows."""
        return {"attention": self.state.value, "attention_since": self.since, "attention_detail": self.detail}

    def snapshot(self) -> dict[str, Any]:
        """What the page gets pushed."""
        return {"attention": self.state.value, "since": self.since, "detail": self.detail, "event": self.event}

    # --- wiring -------------------------------------------------------------------
    def watch(self, foreground: Foreground, leader: int) -> None:
        """Where to ask which process group is in front of the PTY, and the shell's own pid."""
        self._foreground, self._leader = foreground, leader

    # --- changes ------------------------------------------------------------------
    def _set(self, state: Attention, detail: str, event: str) -> bool:
        """Change under the lock; returns whether anything shown changed (call ``_changed`` then)."""
        if self._ended and state is not Attention.EXITED:
            return False
        changed = state is not self.state or detail != self.detail or event != self.event
        if state is not self.state:
            self.state = state
            self.since = time.time()
        self.detail, self.event = detail, event
        return changed

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def report(self, report: Report) -> bool:
        """A hook's report; True when it was taken (a late or meaningless one is dropped)."""
        now = time.time()
        t = report.t if report.t is not None and abs(report.t - now) < _CLOCK_SLACK_S else None
        with self._lock:
            if t is not None and t < self._last_t:
                return False  # an older hook's report arrived after a newer one
            outcome: Outcome = interpret(report, self._thread)
            if outcome.thread:
                self._thread = outcome.thread
            if outcome.state is None:
                return False
            if outcome.only_from is not None and self.state not in outcome.only_from:
                return False
            if t is not None:
                self._last_t = t
            state = outcome.state
            if self.shell:
                # An agent started from a shell: its end is the shell's prompt, not the session's.
                self._hooked = state in _HOOK_STATES
                if state is Attention.EXITED:
                    state = Attention.IDLE
            changed = self._set(state, outcome.detail, report.event)
        if changed:
            self._changed()
        return True

    def input(self, data: bytes) -> None:
        """Keystrokes: Enter while "needs input" answers the question; Esc or Ctrl-C dismisses it.

        A shell's bell is answered by any keystroke: the user is there.
        """
        self._last_input = time.monotonic()
        if self.state is not Attention.NEEDS_INPUT:
            return
        bell = self.shell and not self._hooked
        dismissed = data in _DISMISS
        if not bell and not dismissed and not any(k in data for k in _ENTER):
            return
        in_front = self._in_front() if bell else None
        with self._lock:
            if self.state is not Attention.NEEDS_INPUT:
                return
            if bell:
                answered = Attention.IDLE if in_front is False else Attention.RUNNING
            else:
                # Dismissed: every CLI then cancels the tool and waits for the user (no hook says so).
                answered = Attention.IDLE if dismissed else Attention.WORKING
            changed = self._set(answered, "", "dismissed" if dismissed else "input")
        if changed:
            self._changed()

    def output(self, data: bytes) -> None:
        """A read from the PTY (the hot path)."""
        self._last_output = time.monotonic()
        if self._scanner is None:
            return
        events = self._scanner.feed(data)
        now = self._last_output
        if not events and now - self._last_foreground_check < FOREGROUND_EVERY_S:
            return
        self._shell_update(events, now)

    def tick(self) -> None:
        """Called about twice a second by the hub: the foreground check, the quiet periods."""
        now = time.monotonic()
        if self.shell:
            self._shell_update([], now)
        elif self.state is Attention.WORKING and now - self._last_output > QUIET_S:
            with self._lock:
                changed = self.state is Attention.WORKING and self._set(Attention.IDLE, "", "quiet")
            if changed:
                self._changed()

    def exited(self) -> None:
        with self._lock:
            changed = self._set(Attention.EXITED, "", "exit")
            self._ended = True
        if changed:
            self._changed()

    # --- the plain shell ------------------------------------------------------------
    def _in_front(self) -> bool | None:
        """True when a program other than the shell holds the terminal; None when unknown."""
        if self._foreground is None or self._leader is None:
            return None
        pgid = self._foreground()
        return None if pgid is None else pgid != self._leader

    def _shell_update(self, events: list[str], now: float) -> None:
        self._last_foreground_check = now
        in_front = self._in_front()
        with self._lock:
            state, detail, event = self.state, self.detail, self.event
            for ev in events:
                if ev.startswith("133;"):
                    self._marks = True
                    if ev == "133;C":
                        state, detail, event = Attention.RUNNING, "", "command"
                    elif ev in ("133;A", "133;D"):
                        state, detail, event = Attention.IDLE, "", "prompt"
                        self._hooked = False
                elif ev == "bell":
                    if not self._hooked and now - self._last_input > BELL_AFTER_INPUT_S:
                        state, detail, event = Attention.NEEDS_INPUT, "bell", "bell"
            rang = state is Attention.NEEDS_INPUT and event == "bell"  # stays until the user types
            if not self._marks and not rang:
                if in_front is False:
                    if state is not Attention.IDLE:
                        state, detail, event = Attention.IDLE, "", "prompt"
                    self._hooked = False
                elif in_front is True:
                    if state is Attention.IDLE and not self._hooked:
                        state, detail, event = Attention.RUNNING, "", "command"
                elif not self._hooked and state in (Attention.IDLE, Attention.RUNNING):
                    quiet = now - self._last_output > SHELL_QUIET_S
                    state = Attention.IDLE if quiet else Attention.RUNNING
                    detail, event = "", "quiet" if quiet else "output"
            changed = self._set(state, detail, event)
        if changed:
            self._changed()
