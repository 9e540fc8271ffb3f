"""The agent catalogue: everything the app knows about each coding agent.

One entry per agent, so adding an agent means adding one ``Agent`` here (and,
if it reads config files, one writer in ``lib.agents.config``). The session
registry builds argv from ``Agent.command``; the installer reads the npm
package and pinned version; the launcher reads names, descriptions and which
``Settings`` field holds the model.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Agent:
    """A coding agent (or the plain shell) the user can start in a terminal.

    ``command`` is the argv of a fresh session, resolved via PATH (where
    ``~/.local/bin`` comes first). ``resume_command`` continues the agent's
    last conversation in the working folder. ``npm_package``/``npm_version``
    are ``None`` for tools the system already has. ``config_files`` are paths
    relative to HOME that ``lib.agents.config`` writes for this agent.
    """

    id: str
    name: str
    description: str
    command: list[str]
    resume_command: list[str] | None = None
    npm_package: str | None = None
    npm_version: str | None = None
    binary: str | None = None
    model_field: str | None = None
    config_files: tuple[str, ...] = field(default_factory=tuple)
    version_args: tuple[str, ...] = ("--version",)

    @property
    def npm_spec(self) -> str | None:
        """``pkg@version`` for ``npm install``; ``None`` when nothing to install."""
        if not self.npm_package:
            return None
        return f"{self.npm_package}@{self.npm_version}" if self.npm_version else self.npm_package

    @property
    def executable(self) -> str:
        """The program name looked up on PATH."""
        return self.binary or self.command[0]

    @property
    def needs_workspace(self) -> bool:
        """True when the agent talks to model endpoints and so needs host + token."""
        return self.model_field is not None


AGENTS: tuple[Agent, ...] = (
    Agent(
        id="claude",
        name="Claude Code",
        description="Anthropic's coding agent, on Claude models served by your workspace.",
        command=["claude"],
        resume_command=["claude", "--continue"],
        npm_package="@anthropic-ai/claude-code",
        npm_version="2.1.332",
        model_field="anthropic_model",
        config_files=(".claude/settings.json", ".claude.json"),
    ),
    Agent(
        id="codex",
        name="Codex",
        description="OpenAI's coding agent, on GPT models over the Responses API.",
        command=["codex"],
        resume_command=["codex", "resume", "--last"],
        npm_package="@openai/codex",
        npm_version="0.171.0",
        model_field="codex_model",
        config_files=(".codex/config.toml",),
    ),
    Agent(
        id="gemini",
        name="Gemini CLI",
        description="Google's coding agent, on Gemini models served by your workspace.",
        command=["gemini"],
        resume_command=["gemini", "--resume", "latest"],
        npm_package="@google/gemini-cli",
        npm_version="0.61.0",
        model_field="gemini_model",
        config_files=(".gemini/.env", ".gemini/settings.json", ".gemini/trustedFolders.json"),
    ),
    Agent(
        id="opencode",
        name="OpenCode",
        description="Open-source coding agent, on any chat-completions model endpoint.",
        command=["opencode"],
        resume_command=["opencode", "--continue"],
        npm_package="opencode-ai",
        npm_version="1.18.33",
        model_field="opencode_model",
        config_files=(".config/opencode/opencode.json",),
    ),
    Agent(
        id="bash",
        name="Shell",
        description="A plain interactive shell in the project folder.",
        command=["bash", "-i"],
        resume_command=None,
    ),
)

_BY_ID = {agent.id: agent for agent in AGENTS}


def get_agent(agent_id: str) -> Agent | None:
    """The catalogue entry for ``agent_id``, or ``None`` for an unknown id."""
    return _BY_ID.get(agent_id)


def agent_ids() -> list[str]:
    """All ids, in catalogue order (the order the launcher shows cards)."""
    return [agent.id for agent in AGENTS]


def installable_agents() -> list[Agent]:
    """Agents the installer puts into ``~/.local`` from npm."""
    return [agent for agent in AGENTS if agent.npm_package]


def local_bin(home: Path) -> Path:
    """Where ``npm install -g --prefix ~/.local`` puts executables."""
    return home / ".local" / "bin"


def find_executable(agent: Agent, home: Path) -> str | None:
    """Full path of the agent's program: ``~/.local/bin`` first, then PATH.

    Mirrors how sessions resolve argv, so "installed" on a card means the
    session will actually find the program.
    """
    candidate = local_bin(home) / agent.executable
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    if agent.npm_package:
        # An npm CLI counts as installed only in ~/.local: a stray global copy
        # of another version would silently differ from the pinned one.
        return None
    return shutil.which(agent.executable)
