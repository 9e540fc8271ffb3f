"""The PTY layer: child processes on PTYs, their I/O served by the server's event loop.

Everything a session needs from a PTY is in the two protocols below, as in
ttyd's ``pty.h``: spawn with a read and an exit callback, then write, pause,
resume, resize, kill. Flow control is decided above and only *applied* here.
``LoopPump`` is the one implementation: each PTY's fd is watched by the
server's own event loop, so idle sessions cost no CPU and no thread, and
output reaches the WebSocket without a hop between threads.

Two rules keep a busy session from slowing typing in another (issue 14):

- A readiness callback takes only what the PTY holds (``read_ready``): one
  read, more only while ``FIONREAD`` reports bytes, at most ``READ_BUDGET``.
  Reading an *empty* PTY waits for the line discipline's worker to push the
  producer's next bytes (``n_tty_read`` -> ``tty_buffer_flush_work``); the old
  drain ended every burst so, up to 256 KiB per call while the producer
  refilled it, and 82 % of the loop's time went there.
- Sessions not typed in yield the CPU (``Focus``): each read wakes a busy
  PTY's producer, which at equal priority preempts the loop carrying every
  keystroke. The session typed in last keeps full priority; the others'
  scheduling groups (Linux autogroups: one per ``setsid`` session, nice
  settable both ways through ``/proc/<pid>/autogroup``) run at
  ``SESSION_NICE`` until typed in or ``FOCUS_S`` pass without a keystroke.
  Without autogroups (a container's cgroup) the programs' own nice, set
  before they run, ranks them under the server (undoing it needs privilege).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import struct
import termios
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from ptyprocess import PtyProcess

from lib.terminal import procs

log = logging.getLogger(__name__)

READ_SIZE = 65536
READ_BUDGET = 64 * 1024  # bytes one readiness callback takes from one PTY, at most
WRITE_SIZE = 65536
SESSION_NICE = 10  # how much lower sessions run than the server and the session typed in (0 = same)
FOCUS_S = 30.0  # seconds without a keystroke after which every session has full priority again

ReadCallback = Callable[[bytes], None]  # on the event loop, with each slice of output
ExitCallback = Callable[[int | None], None]  # once, exit code (128 + signal), from the reaping thread


class Pty(Protocol):
    """One child process on a PTY, as spawned by a ``Pump``."""

    pid: int

    def write(self, data: bytes) -> None:
        """Queue input; never blocks. What the PTY cannot take now follows as the program reads, in order."""

    @property
    def pending_input(self) -> int:
        """Bytes written but not yet taken by the PTY."""

    def pause(self) -> None:
        """Stop reading output until ``resume`` (the program then blocks on a full PTY)."""

    def resume(self) -> None:
        """Read output again after ``pause``; harmless when not paused or after the end."""

    def resize(self, cols: int, rows: int) -> None: ...

    def foreground_pid(self) -> int | None:
        """Process group in front on the terminal (``vim``, ``claude``...), None when unknown."""

    def kill(self, grace_s: float = 1.0) -> None:
        """End every process of the PTY's session, reap the child and free the PTY (blocking)."""


class Pump(Protocol):
    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str],
        cols: int,
        rows: int,
        on_read: ReadCallback,
        on_exit: ExitCallback,
    ) -> Pty:
        """Start ``argv`` on a new PTY (a session leader with it as controlling terminal)."""


def waiting_bytes(fd: int) -> int:
    """Bytes the PTY holds for reading now (``FIONREAD``; never blocks on the producer)."""
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def read_ready(fd: int, budget: int = READ_BUDGET) -> tuple[bytes, bool]:
    """Read what the PTY holds now, up to ``budget``: (output, at end of file).

    The loop saw the fd readable, so the first read finds bytes; more only
    while ``FIONREAD`` reports some (an empty PTY's read would wait for the
    producer). A PTY hands out one 4 KiB line-discipline buffer per read.
    """
    chunks: list[bytes] = []
    total = 0
    eof = False
    while True:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            break
        except OSError as exc:  # EIO: the other side of the PTY is closed
            if exc.errno != errno.EIO:
                log.warning("Reading a terminal failed: %s", exc)
            eof = True
            break
        if not data:
            eof = True
            break
        chunks.append(data)
        total += len(data)
        if total >= budget or not waiting_bytes(fd):
            break
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), eof


def lower_priority(nice: int = SESSION_NICE) -> None:
    """In a session's child before it runs: rank its programs under the server where they share a group.

    (With autogroups, ``Focus`` sets the group's nice.) Raising one's own nice needs no privilege.
    """
    if nice > 0:
        try:
            os.nice(nice)
        except OSError:
            pass


def set_group_nice(pid: int, nice: int) -> None:
    """Nice of the scheduling group (autogroup) of ``pid``'s session; nothing without autogroups."""
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:  # no autogroups, or the session has ended
        pass


class Focus:
    """The session typed in last keeps full priority; the other sessions' groups yield (loop only)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.current: LoopPty | None = None  # the session typed in last, None when nobody types
        self._ptys: weakref.WeakSet[LoopPty] = weakref.WeakSet()
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, pty: LoopPty) -> None:
        """A new session: in the background while another one is typed in."""
        self._ptys.add(pty)
        if self.current is not None:
            set_group_nice(pty.pid, SESSION_NICE)

    def discard(self, pty: LoopPty) -> None:
        self._ptys.discard(pty)
        self.current = None if self.current is pty else self.current

    def typed(self, pty: LoopPty) -> None:
        """A keystroke for ``pty``: cheap when it has the focus already (a float stored)."""
        self._last = self.loop.time()
        if self._timer is None:
            self._timer = self.loop.call_later(FOCUS_S, self._expire)
        if pty is not self.current:
            self.current = pty
            for other in list(self._ptys):
                set_group_nice(other.pid, 0 if other is pty else SESSION_NICE)

    def _expire(self) -> None:
        left = self._last + FOCUS_S - self.loop.time()
        if left > 0:
            self._timer = self.loop.call_later(left, self._expire)
            return
        self._timer, current, self.current = None, self.current, None
        for pty in list(self._ptys) if current is not None else ():
            set_group_nice(pty.pid, 0)


class LoopPump:
    """Serves every PTY from one asyncio event loop (the server's, handed over by its lifespan)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.focus = Focus(loop)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str],
        cols: int,
        rows: int,
        on_read: ReadCallback,
        on_exit: ExitCallback,
    ) -> LoopPty:
        proc = PtyProcess.spawn(list(argv), cwd=cwd, env=dict(env), dimensions=(rows, cols), preexec_fn=lower_priority)
        return LoopPty(self.loop, proc, on_read, on_exit, self.focus)


class LoopPty:
    """A PTY whose reads and pending writes run on the loop.

    Methods may be called from any thread: what must touch the loop's
    watchers is run on the loop (inline when already there, which is the
    case for keystrokes and flow control in the app).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, proc: PtyProcess, on_read: ReadCallback, on_exit: ExitCallback,
        focus: Focus | None = None,
    ) -> None:
        self.loop = loop
        self._focus = focus if focus is not None else Focus(loop)
        self.proc = proc
        self.pid: int = proc.pid
        self.fd: int = proc.fd
        self._on_read = on_read
        self._on_exit = on_exit
        self._input = bytearray()  # non-empty <=> a writer is registered (loop only)
        self._ended = False  # EOF seen or killed: the loop no longer watches the fd
        self._reaped = threading.Event()
        self._reap_lock = threading.Lock()
        self._killed = False
        os.set_blocking(self.fd, False)
        self._soon(self._start)

    # --- running things on the loop ------------------------------------------
    def _in_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def _soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop: now when called there, else as soon as it can."""
        if self._in_loop():
            fn()
        else:
            self.loop.call_soon_threadsafe(fn)

    def _on_loop_wait(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop and return once it ran (from any thread)."""
        if self._in_loop():
            fn()
            return
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        try:
            self.loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop is closed: nothing watches the fd any more
            fn()
            return
        done.wait(timeout=5)

    # --- output --------------------------------------------------------------
    def _start(self) -> None:
        self._focus.add(self)
        self._watch()

    def _watch(self) -> None:
        if not self._ended:
            try:
                self.loop.add_reader(self.fd, self._readable)
            except (OSError, ValueError):  # closed meanwhile
                pass

    def _readable(self) -> None:
        data, eof = read_ready(self.fd)
        if data:
            self._on_read(data)
        if eof:
            self._end()
            threading.Thread(target=self._reap, name=f"reap-{self.pid}", daemon=True).start()

    def pause(self) -> None:
        self._soon(lambda: self.loop.remove_reader(self.fd))

    def resume(self) -> None:
        self._soon(self._watch)

    # --- input ---------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._in_loop():  # a keystroke from the WebSocket: straight to the PTY
            self._write(data)
        else:
            self.loop.call_soon_threadsafe(self._write, data)

    @property
    def pending_input(self) -> int:
        return len(self._input)

    def _write(self, data: bytes) -> None:
        if self._ended:
            return
        waiting = bool(self._input)
        self._input += data
        if not waiting and not self._flush():
            self.loop.add_writer(self.fd, self._writable)
        self._focus.typed(self)

    def _writable(self) -> None:
        if self._flush():
            self.loop.remove_writer(self.fd)

    def _flush(self) -> bool:
        """Write what the PTY takes now; True when nothing is left."""
        while self._input:
            try:
                n = os.write(self.fd, self._input[:WRITE_SIZE])
            except BlockingIOError:
                return False
            except OSError:  # the PTY is gone; drop what cannot be delivered
                self._input.clear()
                return True
            del self._input[:n]
        return True

    # --- the rest --------------------------------------------------------------
    def resize(self, cols: int, rows: int) -> None:
        if not self._ended:
            self.proc.setwinsize(rows, cols)

    def foreground_pid(self) -> int | None:
        if self._ended:
            return None
        try:
            return os.tcgetpgrp(self.fd)
        except OSError:
            return None

    def _end(self) -> None:
        """Stop watching the fd (loop only). Needed before it is closed: the number is reused at once."""
        self._ended = True
        self._input.clear()
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        self._focus.discard(self)

    def _reap(self) -> None:
        with self._reap_lock:
            if self._reaped.is_set():
                return
            try:
                self.proc.wait()
            except Exception:  # noqa: BLE001 - already reaped elsewhere
                pass
            code = self.proc.exitstatus
            if code is None and self.proc.signalstatus is not None:
                code = 128 + self.proc.signalstatus
            try:
                self._on_exit(code)
            finally:
                self._reaped.set()

    def kill(self, grace_s: float = 1.0) -> None:
        """End every process of the session (HUP, TERM, KILL), reap the child, free the PTY.

        Blocking (it waits ``grace_s`` per signal for programs to save their
        state): call it off the loop.
        """
        if self._killed:
            return
        self._killed = True
        procs.end_session(self.pid, grace_s)
        if not self._reaped.wait(timeout=2.0):
            # No EOF seen (a leftover held the PTY open): reap the leader here.
            self._on_loop_wait(self._end)
            self._reap()
        self._on_loop_wait(self._end)
        # Close through ptyprocess so its __del__ never closes a reused fd number.
        self.proc.fileobj.close()
        self.proc.closed = True
