"""A terminal session: one PTY process, its scrollback and its viewers.

The shell runs as a session leader with the PTY as its controlling terminal
(ptyprocess forks, calls setsid and opens the slave), so Ctrl-C reaches the
foreground job and job control works as in any terminal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ptyprocess import PtyProcess

from lib.terminal import procs
from lib.terminal.errors import RequestError
from lib.terminal.viewers import DEFAULT_CLIENT_LIMIT, Client
from lib.terminal.pump import LoopPump, PtyPump
from lib.terminal.scrollback import Scrollback

log = logging.getLogger(__name__)

MAX_PENDING_INPUT = 64 * 1024 * 1024
PAUSE_AT = 1024 * 1024  # bytes every viewer is behind before the PTY is paused
# Never handed to a terminal: the CLIs must read the config files the app keeps
# current, and a shell must not see the app's own credentials.
STRIPPED_ENV_PREFIXES = ("DATABRICKS_",)
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
    env = {
        k: v
        for k, v in base.items()
        if not k.startswith(STRIPPED_ENV_PREFIXES) and k not in STRIPPED_ENV
    }
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


class PtySession:
    def __init__(self, spec: SessionSpec, pump: PtyPump | LoopPump, *, cols: int = 120, rows: int = 32) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.agent = spec.agent
        self.label = spec.label
        self.cwd = spec.cwd
        self.created_at = time.time()
        self.last_activity = self.created_at
        self.detached_since: float | None = self.created_at
        self.exit_code: int | None = None
        self.status = "running"
        self._pump = pump
        self._lock = threading.Lock()
        self._clients: set[Client] = set()
        self._scrollback = Scrollback(spec.scrollback_bytes)
        self._input = bytearray()
        self._paused = False
        self._closed = False
        self._reaped = threading.Event()
        self._reap_lock = threading.Lock()
        self.proc = PtyProcess.spawn(list(spec.argv), cwd=str(spec.cwd), env=dict(spec.env), dimensions=(rows, cols))
        self.pid = self.proc.pid
        self.fd = self.proc.fd
        os.set_blocking(self.fd, False)
        pump.add(self)

    # --- facts -------------------------------------------------------------
    @property
    def client_count(self) -> int:
        return len(self._clients)

    def foreground_process(self) -> str | None:
        """Name of the program in front (``vim``, ``claude``...), for the session list."""
        if self.status != "running":
            return None
        try:
            return procs.command_name(os.tcgetpgrp(self.fd))
        except OSError:
            return None

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
        """Register a viewer and hand it the replay.

        Both happen under the output lock, so every byte is either in the
        replay or queued for the client afterwards: nothing twice, nothing lost.
        """
        client = Client(loop, limit, on_drained=self._client_drained)
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
        self._client_drained()  # the one viewer holding output back may be gone

    # --- pump callbacks (pump thread) ----------------------------------------
    def on_output(self, data: bytes) -> None:
        with self._lock:
            self._scrollback.append(data)
            self.last_activity = time.time()
            for client in self._clients:
                client.feed(data)
            # Flow control: when every viewer is behind, stop reading so the
            # program waits (as in any terminal) instead of a viewer being dropped.
            pause = bool(self._clients) and all(c.pending > PAUSE_AT for c in self._clients)
            if pause:
                self._paused = True
        if pause:
            self._pump.pause(self)

    def _client_drained(self) -> None:
        with self._lock:
            resume, self._paused = self._paused, False
        if resume and self.status == "running":
            self._pump.resume(self)

    def on_eof(self) -> None:
        threading.Thread(target=self._reap, name=f"reap-{self.id}", daemon=True).start()

    def _reap(self) -> None:
        with self._reap_lock:
            if self._reaped.is_set():
                return
            try:
                self.proc.wait()
            except Exception:  # already reaped elsewhere
                pass
            self._record_exit()

    def _record_exit(self) -> None:
        code = self.proc.exitstatus
        if code is None and self.proc.signalstatus is not None:
            code = 128 + self.proc.signalstatus
        with self._lock:
            self.exit_code = code
            self.status = "exited"
            for client in self._clients:
                client.notify_exit(code)
        self._reaped.set()
        log.info("Session %s (%s) ended with exit code %s.", self.id, self.agent, code)

    # --- input ---------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue keystrokes or a paste of any size; never blocks the caller.

        What the PTY cannot take now is written by the pump thread as soon as
        the program reads, in order.
        """
        if self.status != "running":
            return
        with self._lock:
            if len(self._input) + len(data) > MAX_PENDING_INPUT:
                raise InputTooLarge(
                    f"the terminal is still busy with {len(self._input)} bytes of earlier input; "
                    f"paste less than {MAX_PENDING_INPUT // (1024 * 1024)} MiB at a time"
                )
            self._input += data
            self.last_activity = time.time()
            done = self._flush_locked()
        if not done:
            self._pump.want_write(self)

    def has_input(self) -> bool:
        return bool(self._input)

    def flush_input(self) -> bool:
        with self._lock:
            return self._flush_locked()

    def _flush_locked(self) -> bool:
        while self._input:
            try:
                n = os.write(self.fd, self._input[:65536])
            except BlockingIOError:
                return False
            except OSError:  # the PTY is gone; drop what cannot be delivered
                self._input.clear()
                return True
            del self._input[:n]
        return True

    def resize(self, cols: int, rows: int) -> None:
        if self.status == "running":
            self.proc.setwinsize(rows, cols)

    def rename(self, label: str) -> None:
        self.label = label

    # --- ending --------------------------------------------------------------
    def close(self, grace_s: float = 1.0) -> None:
        """End every process of the session, reap it and free the PTY."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            clients = list(self._clients)
        procs.end_session(self.pid, grace_s)
        if not self._reaped.wait(timeout=2.0):
            # No EOF seen (a leftover held the PTY open): reap the leader here.
            self._pump.remove(self)
            self._reap()
        self._pump.remove(self)
        # Close through ptyprocess so its __del__ never closes a reused fd number.
        self.proc.fileobj.close()
        self.proc.closed = True
        self.status = "closed"
        for client in clients:
            client.notify_gone()
