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
from collections.abc import Callable, Mapping

from lib.access.owner import OwnerResolver
from lib.agents.setup import BootSetup
from lib.settings import Settings, load_settings
from lib.sync import install_hook, refused_token
from lib.terminal.pump import LoopPump
from lib.terminal.registry import SessionRegistry
from lib.workspace.tokens import TokenStore, env_token

log = logging.getLogger(__name__)


class Runtime:
    """Token store, owner resolver, boot setup and session registry, wired once."""

    def __init__(self, settings: Callable[[], Settings] = load_settings, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.tokens = TokenStore(sync_refusal=refused_token)
        self.owner = OwnerResolver(env, token=self._token_for_owner_lookup)
        self.setup = BootSetup(self.tokens, owner=self._owner_identity)
        self.sessions = SessionRegistry(settings)

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

    def stop(self) -> None:
        """End every session (blocking: run it off the event loop)."""
        self.owner.stop()
        self.sessions.close_all()


_RUNTIME = Runtime()


def runtime() -> Runtime:
    """The process-wide services."""
    return _RUNTIME
