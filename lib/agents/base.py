"""What every agent module provides, and the few facts they share.

An agent module (``claude.py``, ``codex.py``...) builds one ``Agent``: its
catalogue entry (names, command, resume flags), its npm install spec, and
the functions that write its config files, record a trusted folder and name
the endpoint it calls. The rest of the app only ever talks to ``Agent``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from lib.settings import Settings

CODING_AGENT_HEADER = "x-databricks-use-coding-agent-mode"
CODING_AGENT_HEADER_VALUE = "true"
CODING_AGENT_HEADERS = {CODING_AGENT_HEADER: CODING_AGENT_HEADER_VALUE}
PROVIDER_ID = "databricks"  # the provider name in Codex's and OpenCode's configs

NO_HOST = "not configured: no workspace host"
NO_TOKEN = "not configured: no token"


class ConfigState(StrEnum):
    """What writing one agent's (or one tool's) files did."""

    OK = "ok"
    NOT_CONFIGURED = "not configured"
    NONE_NEEDED = "none needed"
    FAILED = "failed"


@dataclass(frozen=True)
class ConfigResult:
    """The outcome of one writer; ``reason`` is shown as is on cards and the setup page."""

    target: str
    status: ConfigState
    reason: str = ""
    files: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.status in (ConfigState.OK, ConfigState.NONE_NEEDED)


Writer = Callable[[Path, Settings, "str | None"], ConfigResult]
Endpoint = Callable[[Settings], "str | None"]
Trust = Callable[[Path, Path], None]
EnvFor = Callable[[Settings], Mapping[str, str]]


def _no_env(settings: Settings) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class Agent:
    """A coding agent (or the plain shell) the user can start in a terminal.

    ``command`` is the argv of a fresh session, looked up on the session's
    PATH (``~/.local/bin`` first). ``resume_command`` continues the agent's
    last conversation in the working folder. ``npm_package``/``npm_version``
    are ``None`` for tools the system already has. ``write_config`` is
    ``None`` for agents that read no config; ``trust`` records a folder as
    trusted before a session starts there; ``endpoint`` is the base URL the
    agent calls; ``session_env`` adds variables a session of it needs.
    """

    id: str
    name: str
    description: str
    command: tuple[str, ...]
    resume_command: tuple[str, ...] | None = None
    npm_package: str | None = None
    npm_version: str | None = None
    model_field: str | None = None
    config_files: tuple[str, ...] = ()
    write_config: Writer | None = None
    trust: Trust | None = None
    endpoint: Endpoint | None = None
    session_env: EnvFor = _no_env

    @property
    def npm_spec(self) -> str | None:
        """``pkg@version`` for ``npm install``; ``None`` when nothing to install."""
        if not self.npm_package:
            return None
        return f"{self.npm_package}@{self.npm_version}" if self.npm_version else self.npm_package

    @property
    def executable(self) -> str:
        """The program name looked up on the session's PATH."""
        return self.command[0]

    @property
    def needs_workspace(self) -> bool:
        """True when the agent talks to model endpoints and so needs host + token."""
        return self.model_field is not None

    def model(self, settings: Settings) -> str | None:
        """The model endpoint name the agent is set to use."""
        return getattr(settings, self.model_field) if self.model_field else None


def model_base_url(settings: Settings, *, gateway: str | None, serving: str) -> str | None:
    """``G/<gateway>`` when an AI Gateway is configured (and serves this API), else ``H/<serving>``."""
    if gateway is not None and settings.gateway_host:
        return f"{settings.gateway_host}/{gateway}"
    if settings.databricks_host:
        return f"{settings.databricks_host}/{serving}"
    return None


def unconfigured(agent_id: str, settings: Settings, token: str | None, endpoint: str | None,
                 files: tuple[Path, ...] = ()) -> ConfigResult | None:
    """The "not configured" result when the endpoint or token is missing, else ``None``."""
    if endpoint is None:
        return ConfigResult(agent_id, ConfigState.NOT_CONFIGURED, NO_HOST, files)
    if not token:
        return ConfigResult(agent_id, ConfigState.NOT_CONFIGURED, NO_TOKEN, files)
    return None
