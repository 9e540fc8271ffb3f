"""Agents: everything the app knows about each coding agent CLI.

The catalogue is re-exported here, so callers write ``from lib.agents import
get_agent``.
"""

from lib.agents.catalog import AGENTS, Agent, agent_ids, find_executable, get_agent, installable_agents, local_bin

__all__ = ["AGENTS", "Agent", "agent_ids", "find_executable", "get_agent", "installable_agents", "local_bin"]
