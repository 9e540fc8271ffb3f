"""An agent CLI in a PTY, answered like a terminal: what the agent tests share.

``Terminal`` pumps a PTY and answers the terminal queries (colours, cursor
position, device attributes) that xterm.js answers in the browser; without
answers some TUIs wait forever. ``READY`` is what each pinned CLI shows once
its prompt takes input; ``QUESTION`` what it shows when it asks before running
a command.
"""

from __future__ import annotations

import os
import re
import select
import signal
import time
from pathlib import Path

from ptyprocess import PtyProcess

# What each pinned CLI shows (whitespace removed) once its prompt takes input.
READY = {"claude": "foragents", "codex": "AskCodextodoanything", "gemini": "Typeyourmessage",
         "opencode": "Askanything"}
ANSWERS = [
    (b"\x1b]10;?", b"\x1b]10;rgb:ffff/ffff/ffff\x1b\\"),
    (b"\x1b]11;?", b"\x1b]11;rgb:0000/0000/0000\x1b\\"),
    (b"\x1b[6n", b"\x1b[1;1R"),
    (b"\x1b[c", b"\x1b[?62;22c"),
    (b"\x1b[?u", b"\x1b[?0u"),
    (b"\x1b[>0q", b"\x1bP>|xterm.js(5.5.0)\x1b\\"),
]
ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=!]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1bP[^\x1b]*\x1b\\|\x1b[()][A-Z0-9]|\x1b[=>78]")


class Terminal:
    """A PTY plus the answers a real terminal would give to its queries."""

    def __init__(self, proc: PtyProcess) -> None:
        self.proc = proc
        self.output = b""

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.proc.fd], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self.proc.fd, 65536)
            except OSError:
                return
            self.output += chunk
            for query, answer in ANSWERS:
                if query in chunk:
                    os.write(self.proc.fd, answer)
            for mode in re.findall(rb"\x1b\[\?(\d+)\$p", chunk):
                os.write(self.proc.fd, b"\x1b[?" + mode + b";2$y")

    def wait_for(self, marker: str, at_most_s: float = 60.0) -> bool:
        """Pump until ``marker`` is on screen (whitespace ignored)."""
        deadline = time.monotonic() + at_most_s
        while marker not in self.text() and time.monotonic() < deadline and self.proc.isalive():
            self.pump(0.3)
        return marker in self.text()

    def text(self) -> str:
        """Everything shown so far, escapes and all whitespace removed."""
        return "".join(ESCAPES.sub(b"", self.output).decode("utf-8", "replace").split())


def kill_leftovers(home: Path) -> None:
    """End processes still running from this HOME (Codex leaves an app-server daemon)."""
    marker = str(home)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


QUESTION = {
    "claude": "Doyouwanttoproceed?",
    "codex": "Wouldyouliketorunthefollowingcommand?",
    "gemini": "Allowexecutionof[Shell]?",
    "opencode": "Permissionrequired",
}
# Codex's "ask" mode runs commands in a read-only sandbox and asks only when
# the model requests escalation for a command that needs more, as real models
# do when they mean to write; the other CLIs' tools have no such arguments.
ESCALATE = {"sandbox_permissions": "require_escalated", "justification": "Create the marker file"}
