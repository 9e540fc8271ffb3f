"""Writing every agent's config files at once, and what each agent still lacks.

Terminals get ``DATABRICKS_*`` stripped from their environment, so these
files are the only way a CLI (or the detached git sync hook, via
``~/.databrickscfg``) learns where to send its calls. The app points every
agent at its own model gateway over loopback (``Loopback``): the files then
hold the gateway's URL and a reference to the session key, and no workspace
token; the gateway adds fresh workspace credentials to each call. A token
(``str``) instead writes a direct config, the CLI calling the workspace
itself (what the CLI tests use, and the app's fallback when it cannot be
reached over loopback). Only ``~/.databrickscfg`` gets the token in either
case, for the sync hook.

Writers are pure functions of (home, settings, access): the boot setup, the
sidebar's Save and the tests all call the same code, and the golden tests
pin the exact bytes. A direct config with no workspace host (or no token)
is reported "not configured" and its files are left alone rather than
written half-broken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from lib import homefiles
from lib.agents import files
from lib.agents.base import NO_HOST, NO_TOKEN, SESSION_KEY_ENV, ConfigResult, ConfigState, Loopback, ModelAccess
from lib.agents.registry import AGENTS, get_agent
from lib.settings import Settings

log = logging.getLogger(__name__)

# Another auth method left in [DEFAULT] would make the SDK refuse the profile.
_OTHER_AUTH_KEYS = ("auth_type", "client_id", "client_secret", "username", "password", "azure_client_id",
                    "azure_client_secret", "azure_tenant_id", "google_service_account")


def write_databrickscfg(home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """``~/.databrickscfg`` ``[DEFAULT]`` host + token, for the git sync hook and databricks tools."""
    if not settings.databricks_host:
        return ConfigResult("databrickscfg", ConfigState.NOT_CONFIGURED, NO_HOST)
    if not token:
        return ConfigResult("databrickscfg", ConfigState.NOT_CONFIGURED, NO_TOKEN)
    path = homefiles.databrickscfg_path(home)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        text = ""
    new = files.update_ini_default(text, {"host": settings.databricks_host, "token": token}, _OTHER_AUTH_KEYS)
    files.write_text(path, new)
    return ConfigResult("databrickscfg", ConfigState.OK, "", (path,))


def write_agent_config(agent_id: str, home: Path, settings: Settings, access: ModelAccess) -> ConfigResult:
    """Write one agent's files; agents without config (the shell) need none."""
    agent = get_agent(agent_id)
    if agent is None:
        raise KeyError(f"unknown agent '{agent_id}'")
    if agent.write_config is None:
        return ConfigResult(agent_id, ConfigState.NONE_NEEDED)
    return agent.write_config(home, settings, access)


def write_all(home: Path, settings: Settings, token: str | None, *,
              gateway: Loopback | None = None) -> list[ConfigResult]:
    """Every agent's files plus ``~/.databrickscfg``, one result each.

    With ``gateway`` every agent goes through the app's gateway and only
    ``~/.databrickscfg`` gets ``token``; without it agents get direct configs
    with ``token``. A writer that fails (disk full, a folder where a file
    should be) becomes a "failed" result so one broken file does not stop the
    others.
    """
    access: ModelAccess = gateway if gateway is not None else token
    targets: list[tuple[str, Callable[[], ConfigResult]]] = [
        (a.id, lambda a=a: write_agent_config(a.id, home, settings, access)) for a in AGENTS
    ]
    targets.append(("databrickscfg", lambda: write_databrickscfg(home, settings, token)))
    results: list[ConfigResult] = []
    for target, write in targets:
        try:
            results.append(write())
        except OSError as exc:
            results.append(ConfigResult(target, ConfigState.FAILED, f"could not write: {exc.strerror or exc}"))
    return results


def trust_project(home: Path, folder: Path, agent_id: str | None = None) -> bool:
    """Record ``folder`` as trusted for ``agent_id`` (every agent that asks when ``None``) before a
    session starts there; True when recorded.

    Choosing a project in the launcher is the user's trust decision; without
    this, agents open on a "trust this folder?" dialog (Claude's default
    answer exits). Trust is for a project folder only: never ``HOME``, ``/``
    or any folder above ``HOME`` (trusting those would trust everything
    below, ``~/.ssh`` included); a shell session records none (the
    registry passes its agent). Other entries in those files are kept.
    """
    folder = folder.resolve()
    real_home = home.resolve()
    if folder == real_home or folder in real_home.parents or folder == Path(folder.anchor):
        log.info("Not marking %s as trusted for the agents: only a project folder below HOME is.", folder)
        return False
    recorded = False
    for agent in AGENTS:
        if agent.trust is None or (agent_id is not None and agent.id != agent_id):
            continue
        try:
            agent.trust(home, folder)
            recorded = True
        except OSError as exc:
            log.warning("Could not mark %s as trusted for %s: %s", folder, agent.name, exc.strerror or exc)
    return recorded


def config_status(agent_id: str, settings: Settings, access: ModelAccess) -> str | None:
    """Why ``agent_id`` cannot reach its models right now, or ``None`` when it can.

    Through the gateway that is the gateway's credential problem (the one
    thing to do, e.g. ``databricks auth login``); directly, a missing host or
    token.
    """
    agent = get_agent(agent_id)
    if agent is None or not agent.needs_workspace:
        return None
    if isinstance(access, Loopback):
        return access.problem
    if agent.endpoint is None or agent.endpoint(settings) is None:
        return NO_HOST
    if not access:
        return NO_TOKEN
    return None


def session_key_env() -> tuple[str, ...]:
    """Every variable a terminal holds its session key in: ``CODA_SESSION_KEY`` and the names
    CLIs that read their key only from the environment insist on (Gemini's ``GEMINI_API_KEY``)."""
    names = [SESSION_KEY_ENV]
    for agent in AGENTS:
        names += [name for name in agent.key_env if name not in names]
    return tuple(names)
