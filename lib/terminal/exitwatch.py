"""Noticing that a session's program ended, at once, even while a background job holds the PTY.

The PTY's end of file never comes while another process keeps the slave open
(``sleep 1000 &`` in a killed shell); a pidfd on the leader tells its end on
the event loop, without a thread, and ``waitid(WNOWAIT)`` reads the code
without reaping the child (the PTY layer reaps it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable


def exit_status(pid: int) -> int | None:
    """Exit code of child ``pid`` once it ended (128 + signal when killed), without reaping it."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None  # already reaped: the PTY layer reports it
    if info is None:
        return None
    if info.si_code == os.CLD_EXITED:
        return info.si_status
    return 128 + info.si_status


def watch_exit(loop: asyncio.AbstractEventLoop, pid: int, on_exit: Callable[[int | None], None]) -> None:
    """Call ``on_exit(code)`` on ``loop`` as soon as process ``pid`` ends (Linux pidfd; no thread)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return  # no pidfd: the PTY's end of file still reports the exit

    def ended() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        # A moment later, so output the program wrote last is read before its exit is told.
        loop.call_later(0.05, report)

    def report() -> None:
        code = exit_status(pid)
        if code is not None:
            on_exit(code)

    def watch() -> None:
        try:
            loop.add_reader(fd, ended)
        except (OSError, ValueError, RuntimeError):
            os.close(fd)

    try:
        loop.call_soon_threadsafe(watch)
    except RuntimeError:  # the loop is closed
        os.close(fd)
