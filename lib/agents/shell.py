"""The plain shell: no install, no config, no model."""

from __future__ import annotations

from lib.agents.base import Agent

AGENT = Agent(
    id="bash",
    name="Shell",
    description="A plain interactive shell in the project folder.",
    command=("bash", "-i"),
)
