"""One thread that moves bytes between every PTY and its session.

A single selector thread serves all PTYs: it sleeps in ``select`` until a PTY
has output or can take pending input, so idle sessions cost no CPU and no
thread each. Reads are drained in a burst (up to ``BURST`` bytes) so heavy
output turns into few, large WebSocket frames.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import selectors
import threading
from typing import Callable, Protocol

log = logging.getLogger(__name__)

READ_SIZE = 65536
BURST = 256 * 1024


class PumpTarget(Protocol):
    fd: int

    def on_output(self, data: bytes) -> None: ...
    def on_eof(self) -> None: ...
    def flush_input(self) -> bool: ...
    def has_input(self) -> bool: ...


class PtyPump:
    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._run, name="pty-pump", daemon=True)
        self._thread.start()

    # Registration happens on the pump thread only, so the selector needs no lock.
    def _call(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._pending.append(fn)
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # a wake-up is already pending

    def add(self, target: PumpTarget) -> None:
        self._call(lambda: self._selector.register(target.fd, selectors.EVENT_READ, target))

    def remove(self, target: PumpTarget) -> None:
        """Stop watching ``target``; returns once the pump has let go of its fd.

        Waiting matters: the caller closes the fd next, and the number may be
        reused by the next PTY at once.
        """
        done = threading.Event()

        def drop() -> None:
            try:
                self._selector.unregister(target.fd)
            except (KeyError, ValueError):
                pass
            done.set()

        if threading.current_thread() is self._thread:
            drop()
            return
        self._call(drop)
        done.wait(timeout=5)

    def pause(self, target: PumpTarget) -> None:
        """Stop reading ``target`` until ``resume`` (flow control)."""
        self._call(lambda: self._set_events(target, selectors.EVENT_WRITE) if target.has_input() else self._drop(target))

    def resume(self, target: PumpTarget) -> None:
        def again() -> None:
            try:
                self._selector.register(target.fd, selectors.EVENT_READ, target)
            except (KeyError, ValueError):
                self._set_events(target, selectors.EVENT_READ | (selectors.EVENT_WRITE if target.has_input() else 0))

        self._call(again)

    def _drop(self, target: PumpTarget) -> None:
        try:
            self._selector.unregister(target.fd)
        except (KeyError, ValueError):
            pass

    def want_write(self, target: PumpTarget) -> None:
        """Ask to be told when the PTY can take more input."""
        self._call(lambda: self._set_events(target, selectors.EVENT_READ | selectors.EVENT_WRITE))

    def _set_events(self, target: PumpTarget, events: int) -> None:
        try:
            self._selector.modify(target.fd, events, target)
        except (KeyError, ValueError):
            pass

    def _run(self) -> None:
        while True:
            for key, events in self._selector.select():
                target = key.data
                if target is None:
                    self._drain_wakeups()
                    continue
                if events & selectors.EVENT_WRITE and target.flush_input():
                    self._set_events(target, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    self._read(target)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            pending, self._pending = self._pending, []
        for fn in pending:
            fn()

    def _read(self, target: PumpTarget) -> None:
        if drain(target):
            try:
                self._selector.unregister(target.fd)
            except (KeyError, ValueError):
                pass
            target.on_eof()


def drain(target: PumpTarget) -> bool:
    """Read what the PTY has (up to ``BURST``), hand it over; True at end of file."""
    chunks: list[bytes] = []
    total = 0
    eof = False
    while total < BURST:
        try:
            data = os.read(target.fd, READ_SIZE)
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
    if chunks:
        target.on_output(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    return eof


class LoopPump:
    """The same job done by the server's own event loop (``add_reader``).

    Output then reaches the WebSocket without a hop between threads, which
    is the larger part of a keystroke's echo time. Used once the app's
    lifespan has handed over its loop; the thread pump serves otherwise.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def _on_loop(self, fn: Callable[[], None]) -> None:
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

        self.loop.call_soon_threadsafe(run)
        done.wait(timeout=5)

    def _in_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def add(self, target: PumpTarget) -> None:
        self._on_loop(lambda: self.loop.add_reader(target.fd, self._read, target))

    def remove(self, target: PumpTarget) -> None:
        def drop() -> None:
            self.loop.remove_reader(target.fd)
            self.loop.remove_writer(target.fd)

        self._on_loop(drop)

    def want_write(self, target: PumpTarget) -> None:
        def writable() -> None:
            if target.flush_input():
                self.loop.remove_writer(target.fd)

        self._on_loop(lambda: self.loop.add_writer(target.fd, writable))

    def pause(self, target: PumpTarget) -> None:
        self._on_loop(lambda: self.loop.remove_reader(target.fd))

    def resume(self, target: PumpTarget) -> None:
        def again() -> None:
            try:
                self.loop.add_reader(target.fd, self._read, target)
            except (OSError, ValueError):  # closed meanwhile
                pass

        self._on_loop(again)

    def _read(self, target: PumpTarget) -> None:
        if drain(target):
            self.loop.remove_reader(target.fd)
            target.on_eof()


_pump: PtyPump | LoopPump | None = None
_pump_lock = threading.Lock()


def use_event_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Serve PTYs started from now on from ``loop`` (called by the lifespan)."""
    global _pump
    with _pump_lock:
        _pump = LoopPump(loop)


def get_pump() -> PtyPump | LoopPump:
    global _pump
    with _pump_lock:
        if _pump is None:
            _pump = PtyPump()
        return _pump
