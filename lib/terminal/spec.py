"""What a session runs: its program (found on the session's PATH), environment and id.

Separate from the running session (``lib.terminal.session``) because the
registry builds a spec before any PTY exists, and tests start the agent CLIs
with exactly this environment without a session.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lib.environment import DATABRICKS, scrubbed

# CI makes some CLIs (Gemini) refuse interactive use; a terminal is interactive.
STRIPPED_ENV = {"STREAMLIT_SERVER_PORT", "STREAMLIT_SERVER_ADDRESS", "CI"}


@dataclass(frozen=True)
class SessionSpec:
    id: str
    agent: str
    argv: Sequence[str]
    cwd: Path
    label: str
    home: Path
    scrollback_bytes: int
    env: Mapping[str, str]
    # The agent's conversation: an id chosen up front (``Agent.new_conversation_args``) or the
    # one resumed; ``conversation_known``: it is in the agent's store already (a resume).
    conversation_id: str | None = None
    conversation_known: bool = False


def resolve_argv(argv: Sequence[str], env: Mapping[str, str]) -> list[str] | None:
    """``argv`` with its program made absolute via the *session's* PATH.

    ptyprocess looks ``argv[0]`` up on the server's own PATH before it applies
    the child's environment, and on Databricks Apps the server's PATH has no
    ``~/.local/bin`` where the agent CLIs are installed. ``None`` when the
    program is nowhere on the session's PATH.
    """
    program = shutil.which(argv[0], path=env.get("PATH", ""))
    return None if program is None else [program, *argv[1:]]


def session_env(home: Path, cwd: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a terminal: ours, minus secrets, plus terminal facts."""
    base = os.environ if base is None else base
    env = scrubbed(base, DATABRICKS, STRIPPED_ENV)
    local_bin = str(home / ".local" / "bin")
    path = [p for p in env.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":") if p and p != local_bin]
    env.update(
        HOME=str(home),
        PWD=str(cwd),  # some CLIs (OpenCode) trust $PWD over getcwd()
        PATH=":".join([local_bin, *path]),
        TERM="xterm-256color",
        COLORTERM="truecolor",
        LANG=env.get("LANG") or "C.UTF-8",
    )
    return env


def new_session_id() -> str:
    return uuid.uuid4().hex[:12]
