"""Process facts from /proc and ending a terminal session's processes.

A PTY's shell is a session leader (ptyprocess calls setsid). Job control puts
each pipeline in its own process group, so killing the leader's group would
miss a backgrounded ``sleep``; we end every process of the *session*
instead. A process that deliberately left the session (the detached sync
hook) is not ours to kill.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes().decode(errors="replace")
    except OSError:
        return None
    # The command name may contain spaces and parentheses; it ends at the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is ``sid``."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def command_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() or None
    except OSError:
        return None


def end_session(sid: int, grace_s: float = 1.0) -> bool:
    """Hang up, then terminate, then kill every process of session ``sid``.

    Returns True when none is left. Each step waits up to ``grace_s`` so a
    program gets the chance to save its state on SIGHUP/SIGTERM.
    """
    for sig in (signal.SIGHUP, signal.SIGCONT, signal.SIGTERM, signal.SIGKILL):
        pids = session_members(sid)
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if sig == signal.SIGCONT:  # wakes stopped jobs so they see the HUP/TERM
            continue
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not session_members(sid):
                return True
            time.sleep(0.02)
    return not session_members(sid)
