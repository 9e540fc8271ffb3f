"""Writing every agent's config files at once, and what each agent still lacks.

Terminals get ``DATABRICKS_*`` stripped from their environment, so these
files are the only way a CLI (or the detached git sync hook, via
``~/.databrickscfg``) learns the workspace and the token. Writers are pure
functions of (home, settings, token): the boot setup, the sidebar's Save and
the tests all call the same code, and the golden tests pin the exact bytes.
With no workspace host (or no token) an agent is reported "not configured"
and its token-bearing files are left alone rather than written half-broken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from lib.agents import files
from lib.agents.base import NO_HOST, NO_TOKEN, ConfigResult, ConfigState
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
    path = home / ".databrickscfg"
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        text = ""
    new = files.update_ini_default(text, {"host": settings.databricks_host, "token": token}, _OTHER_AUTH_KEYS)
    files.write_text(path, new)
    return ConfigResult("databrickscfg", ConfigState.OK, "", (path,))


def write_agent_config(agent_id: str, home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """Write one agent's files; agents without config (the shell) need none."""
    agent = get_agent(agent_id)
    if agent is None:
        raise KeyError(f"unknown agent '{agent_id}'")
    if agent.write_config is None:
        return ConfigResult(agent_id, ConfigState.NONE_NEEDED)
    return agent.write_config(home, settings, token)


def write_all(home: Path, settings: Settings, token: str | None) -> list[ConfigResult]:
    """Every agent's files plus ``~/.databrickscfg``, one result each.

    A writer that fails (disk full, a folder where a file should be) becomes
    a "failed" result so one broken file does not stop the others.
    """
    targets: list[tuple[str, Callable[[], ConfigResult]]] = [
        (a.id, lambda a=a: write_agent_config(a.id, home, settings, token)) for a in AGENTS
    ]
    targets.append(("databrickscfg", lambda: write_databrickscfg(home, settings, token)))
    results: list[ConfigResult] = []
    for target, write in targets:
        try:
            results.append(write())
        except OSError as exc:
            results.append(ConfigResult(target, ConfigState.FAILED, f"could not write: {exc.strerror or exc}"))
    return results


def trust_project(home: Path, folder: Path) -> None:
    """Record ``folder`` as trusted for every agent that asks, before a session starts there.

    Choosing a project in the launcher is the user's trust decision; without
    this, agents open on a "trust this folder?" dialog (Claude's default
    answer exits). Other entries in those files are kept.
    """
    folder = folder.resolve()
    for agent in AGENTS:
        if agent.trust is None:
            continue
        try:
            agent.trust(home, folder)
        except OSError as exc:
            log.warning("Could not mark %s as trusted for %s: %s", folder, agent.name, exc.strerror or exc)


def config_status(agent_id: str, settings: Settings, token: str | None) -> str | None:
    """Why ``agent_id`` cannot be configured right now, or ``None`` when it can."""
    agent = get_agent(agent_id)
    if agent is None or not agent.needs_workspace:
        return None
    if agent.endpoint is None or agent.endpoint(settings) is None:
        return NO_HOST
    if not token:
        return NO_TOKEN
    return None
