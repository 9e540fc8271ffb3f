"""Agents: everything the app knows about each coding agent CLI.

One module per agent (``claude``, ``codex``, ``gemini``, ``opencode``,
``shell``) holds its catalogue entry, install spec, config writer, folder
trust, endpoint and resume flags; ``registry`` lists them. ``files`` edits
the JSON/TOML/INI/.env files they share, ``hooks`` puts our attention hooks
into the JSON settings Claude Code and Gemini CLI share, ``config`` writes them all,
``installer`` puts the CLIs into ``~/.local`` with npm, ``readiness`` says
whether a card can start, and ``setup`` runs the boot steps.

May import: ``lib.settings``, ``lib.statefile``, ``lib.workspace``, ``lib.attention`` (its hook
script and how to merge our hooks). Never the
terminal, access or UI layers.
"""

from lib.agents.base import Agent, ConfigResult, ConfigState
from lib.agents.registry import AGENTS, agent_ids, find_executable, get_agent, installable_agents, local_bin

__all__ = [
    "AGENTS",
    "Agent",
    "ConfigResult",
    "ConfigState",
    "agent_ids",
    "find_executable",
    "get_agent",
    "installable_agents",
    "local_bin",
]
