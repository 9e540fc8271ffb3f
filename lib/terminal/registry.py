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
import uuid
from collections.abc import Callable
from pathlib import Path

from lib import agents, capacity
from lib.agents.config import session_key_env, trust_project
from lib.attention.hub import AttentionHub
from lib.attention.tracker import AttentionTracker
from lib.settings import Settings, load_settings
from lib.terminal import keys
from lib.terminal.errors import ProgramMissing, SessionCapReached, SessionError, UnknownSession
from lib.terminal.keys import SessionKeys
from lib.terminal.pump import Pump
from lib.terminal.recorder import INTERVAL_S, Recorder
from lib.terminal.records import RecordStore, SessionRecord, records_dir
from lib.terminal.session import PtySession
from lib.terminal.spec import SessionSpec, new_session_id, resolve_argv, session_env

log = logging.getLogger(__name__)

MAX_LABEL = 80
_ID_RE = re.compile(r"^[0-9a-f]{12}$")
# C0 and C1 controls (U+009B is a one-character terminal escape), bidi embeddings,
# overrides and isolates (U+202E shows "txt.exe" as "exe.txt"), the bidi marks
# and the line/paragraph separators: none belongs in a one-line label.
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def clean_label(label: str | None, fallback: str) -> str:
    """A session label safe to show anywhere: one line, no control or bidi characters, at most ``MAX_LABEL``."""
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
        # Which session waits for the user (lib.attention): hooks report with a session's key.
        self.attention = AttentionHub(self.list, self.keys.session_for)
        # The app's own loopback address, given to each session so its
        # processes (agent hooks, model calls) can reach the app.
        self.app_url: str | None = None
        self._lock = threading.Lock()
        self._sessions: dict[str, PtySession] = {}
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()
        # Sessions the previous app process was running when it ended (lib.terminal.records).
        self._ended: dict[str, SessionRecord] = {}
        self._recorder: Recorder | None = None

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

        A relative path is taken under ``~/projects``; ``~`` is the app's HOME.
        It must exist (starting a shell somewhere else silently would surprise
        the user) and be HOME or below it once symbolic links are resolved: a
        session never starts in ``/etc``, even through a link in ``~/projects``.
        """
        projects = settings.projects_dir
        projects.mkdir(parents=True, exist_ok=True)
        if cwd is None or not str(cwd).strip():
            default = projects / settings.default_project if settings.default_project else projects
            return default if default.is_dir() else projects
        text = str(cwd).strip()
        if "\x00" in text or len(text) > 4096:
            raise SessionError("the working folder name is not a valid path")
        if text == "~" or text.startswith("~/"):
            path = settings.home / text[2:]
        else:
            path = Path(text)
            if not path.is_absolute():
                path = projects / path
        try:
            path = path.resolve()
        except (OSError, RuntimeError):  # a symlink loop
            raise SessionError(f"the working folder '{text[:200]}' cannot be resolved") from None
        if not path.is_dir():
            raise SessionError(f"the working folder '{text[:200]}' does not exist or is not a folder")
        home = settings.home.resolve()
        if path != home and home not in path.parents:
            raise SessionError(f"the working folder '{text[:200]}' is outside your home folder {home}; "
                               "sessions start in your home folder or below it")
        return path

    def create(
        self, agent: str, label: str | None = None, cwd: str | None = None, *, resume: bool = False,
        session_id: str | None = None, conversation_id: str | None = None,
    ) -> PtySession:
        """Start ``agent`` in ``cwd``; ``resume`` continues its last conversation there.

        ``conversation_id`` continues that conversation of the agent (``resume``
        below); ``session_id`` keeps an ended session's id, so a tab still open
        on it reconnects to the new one.
        """
        settings = self._settings()
        spec_agent = agents.get_agent(agent) if isinstance(agent, str) else None
        if spec_agent is None:
            known = ", ".join(a.id for a in agents.AGENTS)
            raise SessionError(f"unknown agent '{str(agent)[:40]}'; choose one of: {known}")
        folder = self.resolve_cwd(cwd, settings)
        command = spec_agent.resume_command if resume and spec_agent.resume_command else spec_agent.command
        conversation, known = None, False
        if conversation_id and spec_agent.resume_args:
            command = (*spec_agent.command, *spec_agent.resume_args(conversation_id))
            conversation, known = conversation_id, True
        elif not resume and spec_agent.new_conversation_args:  # the conversation's id, chosen up front
            conversation = str(uuid.uuid4())
            command = (*command, *spec_agent.new_conversation_args(conversation))
        session_id = session_id or new_session_id()
        if session_id in self._sessions:  # before a new key replaces the running one's
            raise SessionError(f"session {session_id} is running already")
        env = {**session_env(settings.home, folder), **spec_agent.session_env(settings)}
        key = self.keys.issue(session_id)
        env[keys.KEY_ENV] = key
        for name in session_key_env():  # CLIs that read their key only from the environment (Gemini)
            env[name] = key
        if self.app_url:
            env[keys.APP_URL_ENV] = self.app_url
        argv = resolve_argv(command, env)
        if argv is None:
            raise ProgramMissing(_missing_message(spec_agent))
        trust_project(settings.home, folder, spec_agent.id)  # this agent only; a shell records no trust
        with self._lock:
            running = sum(1 for s in self._sessions.values() if s.status == "running")
            if running >= settings.session_cap:
                raise SessionCapReached(
                    f"{running} sessions are running, the most allowed is {settings.session_cap}; "
                    "close a session you no longer need (or raise the cap in the sidebar) and try again"
                )
            capacity.admit(settings.memory_floor_mb, [(s.label, s.pid) for s in self._sessions.values()
                                                      if s.status == "running"])  # 507 below the floor
            spec = SessionSpec(
                id=session_id,
                agent=spec_agent.id,
                argv=list(argv),
                cwd=folder,
                label=clean_label(label, self._default_label(spec_agent.name, folder)),
                home=settings.home,
                scrollback_bytes=settings.scrollback_bytes,
                env=env,
                conversation_id=conversation,
                conversation_known=known,
            )
            try:
                session = PtySession(spec, self._get_pump(), attention=AttentionTracker(
                    spec_agent.id, shell=not spec_agent.needs_workspace, on_change=self.attention.changed))
            except OSError as exc:
                self.keys.revoke(session_id)
                raise SessionError(f"could not start {spec_agent.name}: {exc.strerror or exc}") from exc
            self._sessions[session.id] = session
        log.info("Started session %s: %s in %s.", session.id, spec_agent.name, folder)
        self.attention.changed()
        self._ensure_reaper()
        return session

    def _default_label(self, agent_name: str, folder: Path) -> str:
        """``Shell · demo · 2``: agent, folder, and the lowest number no session has (lock held)."""
        stem = f"{agent_name} · {folder.name or folder}"
        taken = {s.label for s in self._sessions.values()}
        n = 1
        while f"{stem} · {n}" in taken:
            n += 1
        return f"{stem} · {n}"

    def restart(self, session_id: str) -> PtySession:
        """Start an ended session's program again (same agent, folder and name), then drop the ended one."""
        old = self.get(session_id)
        if old.status == "running":
            raise SessionError("the session is still running; close it or end its program first")
        new = self.create(old.agent, old.label, str(old.cwd))
        try:
            self.close(old.id)
        except UnknownSession:
            pass
        return new

    def rename(self, session_id: str, label: str) -> PtySession:
        session = self.get(session_id)
        session.rename(clean_label(label, session.label))
        return session

    def close(self, session_id: str) -> None:
        """Close a session (its programs end); for a session ended by a restart, forget its record."""
        with self._lock:
            ended = self._ended.pop(session_id, None)
        if ended is not None:
            if self._recorder is not None:
                self._recorder.forget(ended.id)
            log.info("Dismissed session %s (%s), ended by a restart.", ended.id, ended.agent)
            return
        session = self.get(session_id)
        with self._lock:
            self._sessions.pop(session.id, None)
        if self._recorder is not None:
            self._recorder.forget(session.id)
        self.keys.revoke(session.id)
        self.attention.changed()
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

    # --- sessions outlive the app process (lib.terminal.records) ----------------
    def start_recording(self, interval: float = INTERVAL_S) -> list[SessionRecord]:
        """Keep every session's record on disk from now on; returns the sessions the last process left.

        Those are listed as ended by a restart (``ended``) until resumed or dismissed.
        """
        home = self._settings().home
        recorder = Recorder(RecordStore(records_dir(home)), home, self.list, self._claimed_conversations, interval)
        ended = recorder.load_ended()
        with self._lock:
            self._ended = {r.id: r for r in ended if r.id not in self._sessions}
            self._recorder = recorder
        recorder.start()
        if ended:
            log.info("%d session(s) ended by the last restart can be resumed.", len(ended))
        return ended

    def stop_recording(self) -> None:
        """Record every running session once more, as ended by the restart (shutdown, before ``close_all``)."""
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.stop(final=True)

    def _claimed_conversations(self) -> set[str]:
        with self._lock:
            return {r.conversation_id for r in self._ended.values() if r.conversation_id}

    def ended(self) -> list[SessionRecord]:
        """Sessions ended by a restart, oldest first."""
        with self._lock:
            return sorted(self._ended.values(), key=lambda r: r.created_at)

    def ended_screen(self, session_id: str) -> bytes:
        """The last output recorded for an ended session (``lib.terminal.snapshot`` draws it)."""
        recorder = self._recorder
        return b"" if recorder is None or session_id not in self._ended else recorder.store.screen(session_id)

    def resume(self, session_id: str) -> PtySession:
        """Start a session ended by a restart again, with its id: same agent, folder, name and conversation.

        A shell (or an agent whose conversation was never recorded) starts afresh in the same folder.
        """
        with self._lock:
            record = self._ended.pop(session_id, None)  # a second click finds nothing to resume
            running = session_id in self._sessions
        if record is None:
            if running:
                raise SessionError(f"session {session_id[:40]} is running already")
            raise UnknownSession(f"no session with id '{session_id[:40]}' to resume")
        try:
            session = self.create(record.agent, record.label, record.cwd, session_id=record.id,
                                  conversation_id=record.resumable_conversation)
        except Exception:
            with self._lock:
                self._ended.setdefault(record.id, record)
            raise
        log.info("Resumed session %s (%s) in %s, conversation %s.", session.id, session.agent, session.cwd,
                 record.resumable_conversation or "new")
        return session

    def resume_all(self) -> list[PtySession]:
        """Resume every session ended by a restart (up to the cap); the others stay listed."""
        started = []
        for record in self.ended():
            try:
                started.append(self.resume(record.id))
            except SessionError as exc:
                log.warning("Could not resume session %s (%s): %s", record.id, record.agent, exc)
        return started

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
