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
import os
import shutil
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.environment import DATABRICKS, scrubbed
from lib.terminal import procs
from lib.terminal.errors import RequestError
from lib.terminal.pump import Pty, Pump
from lib.terminal.scrollback import Scrollback
from lib.terminal.viewers import DEFAULT_CLIENT_LIMIT, Client

log = logging.getLogger(__name__)

MAX_PENDING_INPUT = 64 * 1024 * 1024
PAUSE_AT = 1024 * 1024  # bytes every viewer is behind before the PTY is paused
# CI makes some CLIs (Gemini) refuse interactive use; a terminal is interactive.
STRIPPED_ENV = {"STREAMLIT_SERVER_PORT", "STREAMLIT_SERVER_ADDRESS", "CI"}


class SessionError(RequestError):
    """A request about sessions that cannot be done; ``status`` is the HTTP answer."""

    status = 400


class UnknownSession(SessionError):
    status = 404


class SessionCapReached(SessionError):
    status = 429


class InputTooLarge(SessionError):
    status = 413


class ProgramMissing(SessionError):
    """The agent's program is not installed where the session looks for it."""

    status = 409


@dataclass(frozen=True)
class SessionSpec:
    id: str
    agent: str
    argv: Sequence[str]
    cwd: Path
    label: str
    home: Path
    scrollback_bytes: int
    env: Mapping[str, str]


def resolve_argv(argv: Sequence[str], env: Mapping[str, str]) -> list[str] | None:
    """``argv`` with its program made absolute via the *session's* PATH.

    ptyprocess looks ``argv[0]`` up on the server's own PATH before it applies
    the child's environment, and on Databricks Apps the server's PATH has no
    ``~/.local/bin`` where the agent CLIs are installed. ``None`` when the
    program is nowhere on the session's PATH.
    """
    program = shutil.which(argv[0], path=env.get("PATH", ""))
    return None if program is None else [program, *argv[1:]]


def session_env(home: Path, cwd: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a terminal: ours, minus secrets, plus terminal facts."""
    base = os.environ if base is None else base
    env = scrubbed(base, DATABRICKS, STRIPPED_ENV)
    local_bin = str(home / ".local" / "bin")
    path = [p for p in env.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":") if p and p != local_bin]
    env.update(
        HOME=str(home),
        PWD=str(cwd),  # some CLIs (OpenCode) trust $PWD over getcwd()
        PATH=":".join([local_bin, *path]),
        TERM="xterm-256color",
        COLORTERM="truecolor",
        LANG=env.get("LANG") or "C.UTF-8",
    )
    return env


def new_session_id() -> str:
    return uuid.uuid4().hex[:12]


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

    def __init__(self, spec: SessionSpec, pump: Pump, *, cols: int = 120, rows: int = 32) -> None:
        self.id = spec.id
        self.agent = spec.agent
        self.label = spec.label
        self.cwd = spec.cwd
        self.created_at = time.time()
        self.last_activity = self.created_at
        self.detached_since: float | None = self.created_at
        self.exit_code: int | None = None
        self.status = "running"
        self._lock = threading.Lock()
        self._clients: set[Client] = set()
        self._scrollback = Scrollback(spec.scrollback_bytes)
        self._paused = False
        self._closed = False
        self._pty: Pty = pump.spawn(
            spec.argv, cwd=str(spec.cwd), env=spec.env, cols=cols, rows=rows,
            on_read=self._on_read, on_exit=self._on_exit,
        )
        self.pid = self._pty.pid

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
        }

    # --- viewers -----------------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop, limit: int = DEFAULT_CLIENT_LIMIT) -> tuple[Client, bytes]:
        """Register a viewer (woken on ``loop``) and hand it the replay.

        The snapshot and the registration happen under the lock ``_on_read``
        holds while it appends to the scrollback and feeds the viewers, so
        every byte is either in the replay or queued for the viewer
        afterwards: nothing twice, nothing lost. (In the app both run on the
        event loop anyway; the lock keeps it true for callers on other threads.)
        """
        client = Client(loop, limit)
        with self._lock:
            replay = self._scrollback.snapshot()
            self._clients.add(client)
            self.detached_since = None
            if self.status == "exited":
                client.notify_exit(self.exit_code)
        return client, replay

    def detach(self, client: Client) -> None:
        with self._lock:
            self._clients.discard(client)
            if not self._clients:
                self.detached_since = time.time()
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
            self._scrollback.append(data)
            self.last_activity = time.time()
            clients = self._clients
            for client in clients:
                client.feed(data)
            pause = bool(clients) and all(c.pending > PAUSE_AT for c in clients)
            if pause:
                self._paused = True
        if pause:
            self._pty.pause()

    def _on_exit(self, code: int | None) -> None:
        """The program ended (on the thread that reaped it)."""
        with self._lock:
            self.exit_code = code
            self.status = "exited"
            for client in self._clients:
                client.notify_exit(code)
        log.info("Session %s (%s) ended with exit code %s.", self.id, self.agent, code)

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

    def resize(self, cols: int, rows: int) -> None:
        if self.status == "running":
            self._pty.resize(cols, rows)

    def rename(self, label: str) -> None:
        self.label = label

    # --- ending --------------------------------------------------------------
    def close(self, grace_s: float = 1.0) -> None:
        """End every process of the session, reap it and free the PTY (blocking)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            clients = list(self._clients)
        self._pty.kill(grace_s)
        self.status = "closed"
        for client in clients:
            client.notify_gone()
