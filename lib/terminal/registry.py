"""All terminal sessions of this process: create, find, rename, close, and the cap.

The ``Runtime`` holds the one registry at module level, not inside
``st.cache_resource``: any browser can ask Streamlit to clear caches, and
that must never lose or orphan a PTY. Idle sessions (nobody attached for
longer than the idle timeout) are closed by a background thread.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lib import agents
from lib.agents.config import trust_project
from lib.settings import Settings, load_settings
from lib.terminal import keys
from lib.terminal.keys import SessionKeys
from lib.terminal.pump import Pump
from lib.terminal.session import (
    ProgramMissing,
    PtySession,
    SessionCapReached,
    SessionError,
    SessionSpec,
    UnknownSession,
    new_session_id,
    resolve_argv,
    session_env,
)

log = logging.getLogger(__name__)

MAX_LABEL = 80
_ID_RE = re.compile(r"^[0-9a-f]{12}$")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def clean_label(label: str | None, fallback: str) -> str:
    text = _CONTROL_CHARS.sub("", label or "").strip()[:MAX_LABEL]
    return text or fallback


class SessionRegistry:
    """Every session of this process.

    PTY output is read on an event loop, so starting a session needs a pump:
    passed here (tests, with a loop of their own) or handed over by
    ``Runtime.start`` through ``use_pump`` once the server's loop runs.
    """

    def __init__(self, settings: Callable[[], Settings] = load_settings, pump: Pump | None = None) -> None:
        self._settings = settings
        self._pump = pump
        self.keys = SessionKeys()
        # The app's own loopback address, given to each session so its
        # processes (agent hooks, model calls) can reach the app.
        self.app_url: str | None = None
        self._lock = threading.Lock()
        self._sessions: dict[str, PtySession] = {}
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()

    def use_pump(self, pump: Pump) -> None:
        """Serve sessions started from now on with ``pump`` (the lifespan hands over its loop)."""
        self._pump = pump

    def _get_pump(self) -> Pump:
        if self._pump is None:
            raise RuntimeError("no event loop serves the terminals yet: start the Runtime (or pass pump=) first")
        return self._pump

    # --- queries -----------------------------------------------------------
    def list(self) -> list[PtySession]:
        with self._lock:
            return sorted(self._sessions.values(), key=lambda s: s.created_at)

    def get(self, session_id: str) -> PtySession:
        with self._lock:
            session = self._sessions.get(session_id) if _ID_RE.match(session_id or "") else None
        if session is None:
            raise UnknownSession(f"no session with id '{session_id[:40]}'")
        return session

    def running_count(self) -> int:
        return sum(1 for s in self.list() if s.status == "running")

    # --- changes -----------------------------------------------------------
    def resolve_cwd(self, cwd: str | None, settings: Settings) -> Path:
        """The folder a new session starts in: given, else the default project.

        A relative path is taken under ``~/projects``. It must exist: starting a
        shell somewhere else silently would surprise the user.
        """
        projects = settings.projects_dir
        projects.mkdir(parents=True, exist_ok=True)
        if cwd is None or not str(cwd).strip():
            default = projects / settings.default_project if settings.default_project else projects
            return default if default.is_dir() else projects
        text = str(cwd).strip()
        if "\x00" in text or len(text) > 4096:
            raise SessionError("the working folder name is not a valid path")
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = projects / path
        path = path.resolve()
        if not path.is_dir():
            raise SessionError(f"the working folder '{text}' does not exist or is not a folder")
        return path

    def create(
        self, agent: str, label: str | None = None, cwd: str | None = None, *, resume: bool = False
    ) -> PtySession:
        """Start ``agent`` in ``cwd``; ``resume`` continues its last conversation there."""
        settings = self._settings()
        spec_agent = agents.get_agent(agent) if isinstance(agent, str) else None
        if spec_agent is None:
            known = ", ".join(a.id for a in agents.AGENTS)
            raise SessionError(f"unknown agent '{str(agent)[:40]}'; choose one of: {known}")
        folder = self.resolve_cwd(cwd, settings)
        command = spec_agent.resume_command if resume and spec_agent.resume_command else spec_agent.command
        session_id = new_session_id()
        env = {**session_env(settings.home, folder), **spec_agent.session_env(settings)}
        env[keys.KEY_ENV] = self.keys.issue(session_id)
        if self.app_url:
            env[keys.APP_URL_ENV] = self.app_url
        argv = resolve_argv(command, env)
        if argv is None:
            raise ProgramMissing(_missing_message(spec_agent))
        trust_project(settings.home, folder)  # a shell user may start an agent there too
        with self._lock:
            running = sum(1 for s in self._sessions.values() if s.status == "running")
            if running >= settings.session_cap:
                raise SessionCapReached(
                    f"{running} sessions are running, the most allowed is {settings.session_cap}; "
                    "close a session you no longer need (or raise the cap in the sidebar) and try again"
                )
            spec = SessionSpec(
                id=session_id,
                agent=spec_agent.id,
                argv=list(argv),
                cwd=folder,
                label=clean_label(label, f"{spec_agent.name} in {folder.name or folder}"),
                home=settings.home,
                scrollback_bytes=settings.scrollback_bytes,
                env=env,
            )
            try:
                session = PtySession(spec, self._get_pump())
            except OSError as exc:
                self.keys.revoke(session_id)
                raise SessionError(f"could not start {spec_agent.name}: {exc.strerror or exc}") from exc
            self._sessions[session.id] = session
        log.info("Started session %s: %s in %s.", session.id, spec_agent.name, folder)
        self._ensure_reaper()
        return session

    def rename(self, session_id: str, label: str) -> PtySession:
        session = self.get(session_id)
        session.rename(clean_label(label, session.label))
        return session

    def close(self, session_id: str) -> None:
        session = self.get(session_id)
        with self._lock:
            self._sessions.pop(session.id, None)
        self.keys.revoke(session.id)
        session.close()
        log.info("Closed session %s (%s).", session.id, session.agent)

    def close_all(self) -> None:
        """End every session in parallel (shutdown has a 15 s budget)."""
        self._stop.set()
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        threads = [threading.Thread(target=s.close, kwargs={"grace_s": 0.5}) for s in sessions]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=8)
        if sessions:
            log.info("Ended %d session(s) at shutdown.", len(sessions))

    # --- idle sessions --------------------------------------------------------
    def close_idle(self, now: float | None = None) -> list[str]:
        """Close sessions nobody has watched for longer than the idle timeout."""
        now = time.time() if now is None else now
        limit = self._settings().idle_timeout_s
        idle = [
            s.id
            for s in self.list()
            if s.detached_since is not None and now - s.detached_since > limit
        ]
        for session_id in idle:
            log.info("Closing session %s: no one attached for over %d s.", session_id, limit)
            try:
                self.close(session_id)
            except UnknownSession:
                pass
        return idle

    def _ensure_reaper(self) -> None:
        with self._lock:
            if self._reaper is not None:
                return
            self._reaper = threading.Thread(target=self._reap_loop, name="idle-sessions", daemon=True)
            self._reaper.start()

    def _reap_loop(self) -> None:
        while not self._stop.wait(60):
            try:
                self.close_idle()
            except Exception:
                log.exception("Checking for idle sessions failed")


def _missing_message(agent: agents.Agent) -> str:
    """Say which setup step brings the program, instead of a PATH puzzle."""
    if agent.npm_package:
        return (
            f"{agent.name} is not installed yet: the setup step \"Install {agent.name}\" has not finished "
            "or has failed. Open the Setup page to see it and retry, or use \"Install now\" on its Launch card."
        )
    return f"{agent.name} cannot start: the program '{agent.executable}' is not installed on this machine."
