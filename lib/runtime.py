"""The one place that builds the app's long-lived services and wires them together.

Every service gets what it needs through its constructor; nothing finds
another service by importing it inside a function. The ``Runtime`` is held
at module level, not in ``st.cache_resource``: any browser can ask Streamlit
to clear its caches, and that must never lose or orphan a terminal. The
lifespan (``lib.lifespan``) starts it with the server's event loop and stops
it at shutdown; pages reach it through ``runtime()``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping

from lib.access.owner import OwnerResolver
from lib.agents.base import Loopback
from lib.agents.setup import BootSetup
from lib.gateway.proxy import Gateway
from lib.gateway.routes import gateway_url
from lib.gateway.usage import Budget
from lib.settings import Settings, load_settings
from lib.sync import install_hook, refused_token, start_background, stop_background
from lib.terminal.pump import LoopPump
from lib.terminal.registry import SessionRegistry
from lib.workspace.credentials import Credentials
from lib.workspace.tokens import TokenStore, env_token

log = logging.getLogger(__name__)


class Runtime:
    """Token store, owner resolver, boot setup, session registry and model gateway, wired once."""

    def __init__(self, settings: Callable[[], Settings] = load_settings, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.tokens = TokenStore(sync_refusal=refused_token)
        self.owner = OwnerResolver(env, token=self._token_for_owner_lookup)
        self.sessions = SessionRegistry(settings)
        self.credentials = Credentials(self.tokens, settings, env)
        self.gateway = Gateway(self.credentials, settings, self.sessions.keys.session_for, budget=self.budget)
        self.setup = BootSetup(self.tokens, owner=self._owner_identity, models=self.model_access)

    def budget(self) -> Budget | None:
        """Every session's daily token budget, ``None`` when there is none.

        Read from the settings at each call, not kept: a change saved in the
        sidebar (or in ``~/.coda/settings.json``) applies to the next model
        call of every session, running ones included, without a restart.
        """
        settings = self.settings()
        if settings.session_daily_tokens <= 0:
            return None
        return Budget(settings.session_daily_tokens, refuse=settings.budget_refuse)

    def model_access(self) -> Loopback | None:
        """How agents reach models: the app's gateway over loopback; ``None`` until the app listens
        there (agents then get direct configs with the token, as before)."""
        if not self.sessions.app_url:
            return None
        return Loopback(gateway_url(self.sessions.app_url), self.credentials.problem())

    def _token_for_owner_lookup(self) -> str | None:
        """The token in use (secret or pasted), else the environment's secret."""
        return self.tokens.token() or env_token(self.owner.env)

    def _owner_identity(self, wait_s: float) -> tuple[str | None, str | None]:
        """The owner's (email, display name) for git, waiting up to ``wait_s`` on Apps."""
        if wait_s > 0 and self.owner.state.on_apps:
            self.owner.wait_resolved(wait_s)
        state = self.owner.state
        return (state.owner, state.display_name) if state.resolved else (None, None)

    def start(self, loop: asyncio.AbstractEventLoop, app_url: str | None = None) -> None:
        """Serve PTYs from ``loop`` and start the background work; returns at once.

        ``app_url`` is the app's own loopback address, handed to every session
        so its processes can report to the app.
        """
        self.sessions.use_pump(LoopPump(loop))
        self.sessions.app_url = app_url
        settings = self.settings()
        settings.projects_dir.mkdir(parents=True, exist_ok=True)
        self.owner.start()
        try:
            install_hook(settings.home)
        except Exception as exc:  # noqa: BLE001 - sync is optional; the terminals must still start
            log.warning("Could not install the git hook for workspace sync: %s", exc)
        self.setup.start(settings)
        start_background(settings.home)  # sync retries, husky-style repos, conversation backups
        try:  # sessions outlive the process: records on disk, ended ones listed (lib.terminal.records)
            self.sessions.start_recording()
        except Exception:  # the terminals must still start
            log.exception("Could not read or keep the session records")
        if settings.resume_on_start:
            threading.Thread(target=self._resume_on_start, name="coda-resume", daemon=True).start()

    def _resume_on_start(self) -> None:
        """The setting "resume my sessions when the app starts": once the CLIs and their configs are ready."""
        self.setup.wait(600)
        started = self.sessions.resume_all()
        if started:
            log.info("Resumed %d session(s) at start.", len(started))

    def stop(self) -> None:
        """End every session (blocking: run it off the event loop)."""
        self.owner.stop()
        self.sessions.stop_recording()  # first: their records say "ended by a restart", with their last screen
        self.sessions.close_all()
        stop_background(final_backup_s=5.0)  # after the agents' last writes


_RUNTIME = Runtime()


def runtime() -> Runtime:
    """The process-wide services."""
    return _RUNTIME
