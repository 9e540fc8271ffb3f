"""What every agent module provides, and the few facts they share.

An agent module (``claude.py``, ``codex.py``...) builds one ``Agent``: its
catalogue entry (names, command, resume flags), its npm install spec, and
the functions that write its config files, record a trusted folder and name
the endpoint it calls. The rest of the app only ever talks to ``Agent``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from lib.settings import Settings
from lib.workspace.endpoints import model_api_base

CODING_AGENT_HEADER = "x-databricks-use-coding-agent-mode"
CODING_AGENT_HEADER_VALUE = "true"
CODING_AGENT_HEADERS = {CODING_AGENT_HEADER: CODING_AGENT_HEADER_VALUE}
PROVIDER_ID = "databricks"  # the provider name in Codex's and OpenCode's configs
# The variable holding the session's key in every terminal (``lib.terminal.keys.KEY_ENV``):
# configs name it, so one file serves every session and holds no secret.
SESSION_KEY_ENV = "CODA_SESSION_KEY"

NO_HOST = "not configured: no workspace host"
NO_TOKEN = "not configured: no token"


@dataclass(frozen=True)
class Loopback:
    """Agents reach models through the app's gateway, over loopback.

    ``url`` is the gateway (``http://127.0.0.1:PORT[/base]/_coda/local/gateway``);
    each wire API lives below it (``api("anthropic")``). Configs then hold
    this URL and a reference to the session key, never a workspace token.
    ``problem`` is why model calls would fail right now (no workspace
    credentials), shown on the launch cards; ``None`` when they can work.
    """

    url: str
    problem: str | None = None

    def api(self, name: str) -> str:
        return f"{self.url.rstrip('/')}/{name}"


# What a config writer is told about reaching models: through the app's gateway
# (``Loopback``, what the app always writes), directly with a workspace token
# (``str``: the CLI calls the workspace itself; tests pin the CLIs' wire formats
# this way), or nothing yet (``None``).
ModelAccess = Loopback | str | None


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


Writer = Callable[[Path, Settings, ModelAccess], ConfigResult]
Endpoint = Callable[[Settings], "str | None"]
Trust = Callable[[Path, Path], None]
EnvFor = Callable[[Settings], Mapping[str, str]]


@dataclass(frozen=True)
class Conversation:
    """One conversation in an agent CLI's own store: its id, when it started and when it was last written.

    ``path``: the file that holds this conversation alone, when there is one (a
    session whose processes hold it open is the conversation's own).
    """

    id: str
    started_at: float  # epoch seconds
    updated_at: float
    path: str | None = None


# Resume by id (``lib.terminal.records``): the argv tail that starts a new conversation
# under an id chosen up front, or continues conversation ``id``.
ConversationArgs = Callable[[str], tuple[str, ...]]
# (HOME, folder, since) -> the conversations held for ``folder`` and written at or after
# ``since`` (epoch seconds), oldest first. Reads the CLI's store; never raises for a
# missing or unreadable one (an empty list).
ConversationLookup = Callable[[Path, Path, float], "list[Conversation]"]


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
    trusted before a session starts there; ``endpoint`` is the workspace URL
    its model calls end up at; ``session_env`` adds variables a session of it
    needs. ``key_env`` names the variables through which the CLI can only
    read its session key from the environment (not from its config file):
    every terminal gets the key under these names too.

    Resume by id (sessions outlive the app process, ``lib.terminal.records``):
    ``new_conversation_args(id)`` starts a new conversation under an id chosen
    up front (CLIs that accept one); ``resume_args(id)`` continues conversation
    ``id`` in the same folder; ``conversations`` reads the CLI's own store, to
    confirm a chosen id or find the one the CLI picked.
    """

    id: str
    name: str
    description: str
    command: tuple[str, ...]
    resume_command: tuple[str, ...] | None = None
    npm_package: str | None = None
    npm_version: str | None = None
    model_field: str | None = None
    write_config: Writer | None = None
    trust: Trust | None = None
    endpoint: Endpoint | None = None
    session_env: EnvFor = _no_env
    key_env: tuple[str, ...] = ()
    new_conversation_args: ConversationArgs | None = None
    resume_args: ConversationArgs | None = None
    conversations: ConversationLookup | None = None

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


def args_with_id(*words: str) -> ConversationArgs:
    """The ``ConversationArgs`` that put ``words`` before the conversation id: ``("--resume", id)``."""
    return lambda conversation_id: (*words, conversation_id)


def model_base_url(settings: Settings, api: str) -> str | None:
    """Where ``api``'s calls end up: the AI Gateway when configured (and serving it), else the
    workspace's serving endpoints (``lib.workspace.endpoints.MODEL_APIS``)."""
    return model_api_base(api, host=settings.databricks_host, gateway_host=settings.gateway_host)


def unconfigured(agent_id: str, settings: Settings, token: str | None, endpoint: str | None,
                 files: tuple[Path, ...] = ()) -> ConfigResult | None:
    """For a direct (token) config: "not configured" when the endpoint or token is missing, else ``None``."""
    if endpoint is None:
        return ConfigResult(agent_id, ConfigState.NOT_CONFIGURED, NO_HOST, files)
    if not token:
        return ConfigResult(agent_id, ConfigState.NOT_CONFIGURED, NO_TOKEN, files)
    return None


# ---------------------------------------------------------------- reading the CLIs' conversation stores


def first_json_line(path: Path, limit: int = 1 << 20) -> dict | None:
    """The first line of a JSON-lines file as an object (``None`` when unreadable or not an object)."""
    try:
        with path.open("rb") as f:
            line = f.readline(limit)
        value = json.loads(line)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def iso_time(value: object, default: float) -> float:
    """``2026-12-01T22:45:34.382Z`` as epoch seconds; ``default`` when it is not such a time."""
    if not isinstance(value, str):
        return default
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


def modified_at(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
