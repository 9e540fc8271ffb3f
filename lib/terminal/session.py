"""A terminal session: one PTY process, its scrollback and its viewers.

The shell runs as a session leader with the PTY as its controlling terminal
(ptyprocess forks, calls setsid and opens the slave), so Ctrl-C reaches the
foreground job and job control works as in any terminal. The PTY itself is
behind ``lib.terminal.pump`` (spawn, write, pause, resume, resize, kill);
its output is read on the server's event loop, so a session needs a pump
bound to a running loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from enum import StrEnum
from typing import Any

from lib.attention.tracker import AttentionTracker
from lib.terminal import procs
from lib.terminal.errors import InputTooLarge
from lib.terminal.exitwatch import watch_exit
from lib.terminal.inputs import InputStream, SharedInput
from lib.terminal.pump import Pty, Pump
from lib.terminal.scrollback import Replay, Scrollback
from lib.terminal.spec import SessionSpec
from lib.terminal.viewers import DEFAULT_CLIENT_LIMIT, Client

log = logging.getLogger(__name__)

MAX_PENDING_INPUT = 64 * 1024 * 1024
MAX_INPUT_STREAMS = 32  # viewers whose input count a session remembers (exactly-once across reconnects)
ANSWER_WINDOW_S = 10.0  # queries in output nobody watched are answered by the next viewer if this recent...
BURST_GAP_S = 0.5  # ... or in the latest burst of output (the program may still wait for the answer)
ANSWER_LIMIT_S = 30.0  # ... but never older than this (a burst may last as long as a build)
PAUSE_AT = 1024 * 1024  # bytes every viewer is behind before the PTY is paused


class SessionStatus(StrEnum):
    """Where a session is in its life: the ``status`` of ``GET /api/sessions`` (a plain string in JSON)."""

    RUNNING = "running"
    EXITED = "exited"  # the program ended; the session stays listed until closed
    CLOSED = "closed"
    # The app process ended while the program ran (a deploy, a crash): the session is
    # listed from its record on disk (``lib.terminal.records``) and can be resumed.
    RESTART_ENDED = "restart-ended"


class PtySession:
    """One program on a PTY, the scrollback of its output and the viewers watching it.

    Output arrives through the PTY layer's read callback on the event loop;
    it is appended to the scrollback and to every viewer's queue under one
    lock, which is what lets ``attach`` promise each byte exactly once.

    Flow control (README "Slow viewers") is decided here, from the viewers'
    queue levels this session owns, and driven by the transport: when a read
    leaves *every* viewer more than ``PAUSE_AT`` behind, the PTY is paused,
    so the program blocks as in any terminal and nothing is dropped. Each
    transport calls ``resume_output`` when its viewer has caught up (queue
    emptied, replay sent); the first one to do so unpauses the PTY. A viewer
    does not call back into its session: it is only a queue. One viewer far
    behind while another keeps up overflows its own queue (``Client.limit``)
    and is disconnected; the others never wait for it.
    """

    def __init__(self, spec: SessionSpec, pump: Pump, *, cols: int = 120, rows: int = 32,
                 attention: AttentionTracker | None = None) -> None:
        self.id = spec.id
        self.agent = spec.agent
        self.label = spec.label
        self.cwd = spec.cwd
        self.created_at = time.time()
        self.last_activity = self.created_at
        self.detached_since: float | None = self.created_at
        self.exit_code: int | None = None
        self.status = SessionStatus.RUNNING
        self.conversation_id = spec.conversation_id
        self.conversation_known = spec.conversation_known
        self._lock = threading.Lock()
        self._clients: set[Client] = set()
        self._scrollback = Scrollback(spec.scrollback_bytes, cols, rows)
        # Output from here on was produced with no viewer attached: nobody
        # answered its terminal queries yet, so the next viewer's terminal may.
        self._unseen_from: int | None = 0
        # When output came (a mark a second at most) and where the latest burst of it began:
        # only recent queries, or the one a program still waits on, are answered late.
        self._output_marks: deque[tuple[float, int]] = deque(maxlen=int(ANSWER_LIMIT_S) + 2)
        self._burst_start = 0
        self._last_output_at = 0.0
        self._inputs: dict[str, InputStream] = {}
        self._paused = False
        self._closed = False
        # Needs input / working / done... (lib.attention): from the agent's hooks and this terminal.
        self.attention = attention or AttentionTracker(spec.agent, shell=spec.agent == "bash")
        self._pty: Pty = pump.spawn(
            spec.argv, cwd=str(spec.cwd), env=spec.env, cols=cols, rows=rows,
            on_read=self._on_read, on_exit=self._on_exit,
        )
        self.pid = self._pty.pid
        self.attention.watch(self._pty.foreground_pid, self.pid)
        loop = getattr(pump, "loop", None)
        if isinstance(loop, asyncio.AbstractEventLoop):
            watch_exit(loop, self.pid, self._leader_exited)

    # --- facts -------------------------------------------------------------
    @property
    def client_count(self) -> int:
        return len(self._clients)

    def foreground_process(self) -> str | None:
        """Name of the program in front (``vim``, ``claude``...), for the session list."""
        if self.status != "running":
            return None
        pgid = self._pty.foreground_pid()
        return None if pgid is None else procs.command_name(pgid)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "label": self.label,
            "cwd": str(self.cwd),
            "pid": self.pid,
            "created_at": self.created_at,
            "last_activity": self.last_activity,
            "status": self.status,
            "exit_code": self.exit_code,
            "clients": self.client_count,
            "foreground": self.foreground_process(),
            **self.attention.fields(),
        }

    # --- viewers -----------------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop, limit: int = DEFAULT_CLIENT_LIMIT) -> tuple[Client, bytes]:
        """Register a viewer (woken on ``loop``) and hand it the whole scrollback as bytes.

        The snapshot and the registration happen under the lock ``_on_read``
        holds while it appends to the scrollback and feeds the viewers, so
        every byte is either in the replay or queued for the viewer
        afterwards: nothing twice, nothing lost. (In the app both run on the
        event loop anyway; the lock keeps it true for callers on other threads.)
        """
        client = Client(loop, limit)
        with self._lock:
            replay = self._scrollback.snapshot()
            self._register(client)
        return client, replay

    def attach_viewer(
        self, loop: asyncio.AbstractEventLoop, *, resume_from: int | None = None,
        scrollback_lines: int = 10000, limit: int = DEFAULT_CLIENT_LIMIT,
    ) -> tuple[Client, Replay, int]:
        """Register a viewer and plan what it gets first (see ``Scrollback.replay``).

        ``resume_from``: the offset up to which the viewer already has the
        output (a reconnect after a network drop); it then gets only the rest.
        Returns the viewer, the replay and the offset from which the output was
        produced with nobody watching and is still recent or the latest burst
        (``_answerable_from``; ``replay.end`` when someone was watching): the
        viewer's terminal answers the queries in that part, and only there.
        Same exactly-once promise as ``attach``.
        """
        client = Client(loop, limit)
        with self._lock:
            replay = self._scrollback.replay(resume_from, scrollback_lines)
            unseen = self._unseen_from if self._unseen_from is not None else replay.end
            if replay.resume and not self._clients:
                # What this viewer missed reached no other terminal either.
                unseen = replay.start
            if unseen < replay.end:
                unseen = max(unseen, self._answerable_from())
            self._register(client)
        return client, replay, max(unseen, replay.start)

    def _answerable_from(self) -> int:
        """Where output recent enough to answer begins (lock held).

        A query nobody answered long ago was given up on (answering it now
        would type into whatever runs now), unless the program still waits
        for the answer: then it is in the latest burst of output. A burst
        that goes on for long (a build log) does not keep its start
        answerable for ever: ``ANSWER_LIMIT_S`` at most.
        """
        now = time.time()
        recent = self._output_since(now - ANSWER_WINDOW_S)
        return min(recent, max(self._burst_start, self._output_since(now - ANSWER_LIMIT_S)))

    def _output_since(self, moment: float) -> int:
        """The offset of the first output marked at or after ``moment`` (lock held)."""
        return next((offset for t, offset in self._output_marks if t >= moment), self._scrollback.end)

    def _register(self, client: Client) -> None:
        """With the lock held."""
        self._clients.add(client)
        self.detached_since = None
        self._unseen_from = None
        if self.status == "exited":
            client.notify_exit(self.exit_code)

    def detach(self, client: Client) -> None:
        with self._lock:
            self._clients.discard(client)
            if not self._clients:
                self.detached_since = time.time()
                if self._unseen_from is None:
                    self._unseen_from = self._scrollback.end
        self.resume_output()  # the one viewer holding output back may be gone

    def resume_output(self) -> None:
        """A viewer caught up: read the PTY again if every viewer being behind had paused it.

        Called by the transport (after sending the replay, after each time it
        empties its viewer's queue) and by ``detach``. Cheap when not paused.
        """
        with self._lock:
            resume, self._paused = self._paused, False
        if resume and self.status == "running":
            self._pty.resume()

    # --- PTY callbacks -------------------------------------------------------
    def _on_read(self, data: bytes) -> None:
        """Output from the PTY (on the event loop)."""
        with self._lock:
            now = time.time()
            if now - self._last_output_at > BURST_GAP_S:
                self._burst_start = self._scrollback.end
            if not self._output_marks or now - self._output_marks[-1][0] >= 1.0:
                self._output_marks.append((now, self._scrollback.end))
            self._last_output_at = now
            self._scrollback.append(data)
            self.last_activity = now
            clients = self._clients
            for client in clients:
                client.feed(data)
            pause = bool(clients) and all(c.pending > PAUSE_AT for c in clients)
            if pause:
                self._paused = True
        if pause:
            self._pty.pause()
        self.attention.output(data)

    def _on_exit(self, code: int | None) -> None:
        """The program ended (on the thread that reaped it, or from ``_leader_exited``); once."""
        with self._lock:
            if self.status != "running":
                return
            self.exit_code = code
            self.status = SessionStatus.EXITED
            for client in self._clients:
                client.notify_exit(code)
        self.attention.exited()
        log.info("Session %s (%s) ended with exit code %s.", self.id, self.agent, code)

    def _leader_exited(self, code: int | None) -> None:
        """The session's first process is gone (seen through its pidfd, on the loop).

        A background job may still hold the PTY open, so no end of file comes
        and the PTY layer cannot tell: say "exited" now and end whatever is
        left of the session (HUP, TERM, KILL, off the loop). Its PTY then
        closes and the PTY layer reaps the leader as usual.
        """
        if self.status != "running" or self._closed:
            return
        self._on_exit(code)
        threading.Thread(
            target=procs.end_session, args=(self.pid, 0.5), name=f"end-{self.pid}", daemon=True
        ).start()

    # --- input ---------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue keystrokes or a paste of any size; never blocks the caller.

        What the PTY cannot take now is written on the event loop as soon as
        the program reads, in order.
        """
        if self.status != "running":
            return
        pending = self._pty.pending_input
        if pending + len(data) > MAX_PENDING_INPUT:
            raise InputTooLarge(
                f"the terminal is still busy with {pending} bytes of earlier input; "
                f"paste less than {MAX_PENDING_INPUT // (1024 * 1024)} MiB at a time"
            )
        self.last_activity = time.time()
        self._pty.write(data)
        self.attention.input(data)

    def write_input(self, stream: InputStream, data: bytes) -> bool:
        """Input from the connection holding ``stream`` (see ``claim_input``); False when it was taken over."""
        if not stream.active:
            return False
        stream.count(len(data))
        self.write(data)
        return True

    def claim_input(self, viewer_id: str) -> tuple[InputStream, int]:
        """Take over the input stream of viewer ``viewer_id`` for a new connection.

        The browser numbers what it types; after a reconnect it resends what
        the server has not counted. From now on only the returned stream
        writes: bytes still arriving on the viewer's previous connection are
        dropped, since the browser resends them. Returns the stream and how
        many bytes of this viewer's input the session has taken so far.
        """
        with self._lock:
            shared = self._inputs.pop(viewer_id, None) or SharedInput()
            self._inputs[viewer_id] = shared  # most recent last
            while len(self._inputs) > MAX_INPUT_STREAMS:
                self._inputs.pop(next(iter(self._inputs)))
            stream = InputStream(shared)
            shared.current = stream
            return stream, shared.received

    def nudge_redraw(self, loop: asyncio.AbstractEventLoop, delay_s: float = 0.15) -> None:
        """Make a full-screen program draw its whole screen again: one row less, then back.

        For a replay that starts inside such a program because its first
        screen left the ring: what it draws next completes the screen.
        """
        if self.status != "running":
            return
        cols, rows = self._scrollback.cols_rows
        self.resize(cols, rows - 1 if rows > 2 else rows + 1)
        loop.call_later(delay_s, self.resize, cols, rows)

    def resize(self, cols: int, rows: int) -> None:
        if self.status == "running":
            with self._lock:
                self._scrollback.resized(cols, rows)
            self._pty.resize(cols, rows)

    def rename(self, label: str) -> None:
        self.label = label

    # --- its record (lib.terminal.records) -------------------------------------
    @property
    def output_end(self) -> int:
        """Bytes of output so far: changes only when the program writes (read without the lock)."""
        return self._scrollback.end

    def last_output(self, max_bytes: int) -> tuple[int, bytes, int, int]:
        """(``output_end``, the last ``max_bytes`` of output, cols, rows): enough to draw its last screen again."""
        with self._lock:
            cols, rows = self._scrollback.cols_rows
            return self._scrollback.end, self._scrollback.tail(max_bytes), cols, rows

    # --- ending --------------------------------------------------------------
    def close(self, grace_s: float = 1.0) -> None:
        """End every process of the session, reap it and free the PTY (blocking)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            clients = list(self._clients)
        self._pty.kill(grace_s)
        self.status = SessionStatus.CLOSED
        for client in clients:
            client.notify_gone()


