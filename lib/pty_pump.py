"""One thread that moves bytes between every PTY and its session.

A single selector thread serves all PTYs: it sleeps in ``select`` until a PTY
has output or can take pending input, so idle sessions cost no CPU and no
thread each. Reads are drained in a burst (up to ``BURST`` bytes) so heavy
output turns into few, large WebSocket frames.
"""

from __future__ import annotations

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
        if eof:
            try:
                self._selector.unregister(target.fd)
            except (KeyError, ValueError):
                pass
            target.on_eof()


_pump: PtyPump | None = None
_pump_lock = threading.Lock()


def get_pump() -> PtyPump:
    global _pump
    with _pump_lock:
        if _pump is None:
            _pump = PtyPump()
        return _pump
