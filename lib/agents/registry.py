"""The agent registry: adding an agent is one module and one line in ``AGENTS``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lib.agents import claude, codex, gemini, opencode, shell
from lib.agents.base import Agent

# Catalogue order is the order the launcher shows cards.
AGENTS: tuple[Agent, ...] = (claude.AGENT, codex.AGENT, gemini.AGENT, opencode.AGENT, shell.AGENT)

_BY_ID = {agent.id: agent for agent in AGENTS}


def get_agent(agent_id: object) -> Agent | None:
    """The catalogue entry for ``agent_id``, or ``None`` for an unknown id (or a non-string)."""
    return _BY_ID.get(agent_id) if isinstance(agent_id, str) else None


def agent_ids() -> list[str]:
    return [agent.id for agent in AGENTS]


def installable_agents() -> list[Agent]:
    """Agents the installer puts into ``~/.local`` from npm."""
    return [agent for agent in AGENTS if agent.npm_package]


def local_bin(home: Path) -> Path:
    """Where ``npm install -g --prefix ~/.local`` puts executables (first on a session's PATH)."""
    return home / ".local" / "bin"


def find_executable(agent: Agent, home: Path) -> str | None:
    """Full path of the agent's program: ``~/.local/bin`` first, then the system's PATH.

    An npm CLI counts only in ``~/.local``: a stray global copy of another
    version would silently differ from the pinned one.
    """
    candidate = local_bin(home) / agent.executable
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    if agent.npm_package:
        return None
    return shutil.which(agent.executable)
