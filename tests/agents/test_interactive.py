"""Each agent CLI, started the way a session starts it, answers a typed prompt.

Like ``tests/agents/test_clis.py`` but interactive: the CLI runs in a PTY with the
terminal environment sessions get (``lib.terminal.spec.session_env``), HOME holds
our config files plus the launcher's project trust entries, and the prompt is
typed. This catches first-run dialogs ("trust this folder?", auth pickers)
that the non-interactive modes skip. A tiny responder answers the terminal
queries (colours, cursor position, device attributes) that xterm.js answers
in the browser; without answers some TUIs wait forever.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ptyprocess import PtyProcess

from lib.agents import config as agent_config
from lib.agents import get_agent
from lib.agents.base import CODING_AGENT_HEADER
from lib.settings import load_settings
from lib.terminal.spec import session_env
from tests.agentterm import READY, Terminal, kill_leftovers
from tests.fakeworkspace import FakeWorkspace

REPLY = "PONG-interactive-7731"
@pytest.fixture(scope="module")
def workspace():
    with FakeWorkspace() as fw:
        fw.model_reply = REPLY
        yield fw


@pytest.mark.parametrize("agent_id", ["claude", "codex", "gemini", "opencode"])
def test_typed_prompt_gets_the_reply(agent_id: str, clis: Path, workspace: FakeWorkspace, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".local").symlink_to(clis)  # as if the boot setup had installed them
    token = workspace.create_token()
    settings = load_settings({"HOME": str(home), "DATABRICKS_HOST": workspace.url})
    assert all(r.ok for r in agent_config.write_all(home, settings, token))
    project = settings.projects_dir / "demo"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    agent_config.trust_project(home, project)
    env = session_env(home, project, os.environ)
    agent = get_agent(agent_id)
    program = shutil.which(agent.command[0], path=env["PATH"])
    assert program == str(home / ".local" / "bin" / agent.command[0])
    workspace.clear_requests()
    term = Terminal(PtyProcess.spawn([program, *agent.command[1:]], cwd=str(project), env=env, dimensions=(40, 120)))
    try:
        ready = term.wait_for(READY[agent_id])
        assert "trust" not in term.text().lower(), f"{agent_id} asked about trust:\n{term.text()[-1500:]}"
        assert ready, f"{agent_id} never became ready:\n{term.text()[-1500:]}"
        term.pump(1.5)  # the prompt is drawn a moment before it listens
        for char in b"Say hi":  # typed, not pasted: TUIs treat a fast burst + Enter as a paste
            term.proc.write(bytes([char]))
            term.pump(0.05)
        term.pump(1.0)
        term.proc.write(b"\r")
        if not term.wait_for(REPLY, at_most_s=10) and not workspace.model_requests:
            term.proc.write(b"\r")  # an Enter swallowed by paste detection; a real user presses again
        assert term.wait_for(REPLY), f"{agent_id} never showed the reply:\n{term.text()[-2000:]}"
    finally:
        term.proc.terminate(force=True)
        kill_leftovers(home)
    calls = workspace.model_requests
    assert calls
    for call in calls:
        assert call.headers.get("authorization") == f"Bearer {token}"
        assert call.headers.get(CODING_AGENT_HEADER) == "true"
