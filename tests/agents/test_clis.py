"""The real agent CLIs, driven only by the files ``lib.agents.config`` writes.

Each CLI is installed from npm at the version pinned in ``lib.agents``
(``tests/clis.py``, the ``clis`` fixture). Each
runs non-interactively with HOME holding exactly our files, against the fake
workspace on 127.0.0.1, and must print the fake model's reply; the fake must
see the token as Bearer and the coding-agent header on every model call.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lib.agents import config as agent_config
from lib.agents import get_agent, installable_agents
from lib.agents.base import CODING_AGENT_HEADER
from lib.settings import load_settings
from lib.terminal.spec import session_env
from tests.clis import COMMANDS
from tests.fakeworkspace import FakeWorkspace

REPLY = "PONG from the fake Databricks model 7731"
CLI_TIMEOUT_S = 180
# Path prefix each agent's model calls must use, per mode.
PREFIXES = {
    "gateway": {"claude": "/anthropic/v1/messages", "codex": "/openai/v1/responses",
                "gemini": "/gemini/v1beta/models/", "opencode": "/serving-endpoints/chat/completions"},
    "serving": {"claude": "/serving-endpoints/anthropic/v1/messages", "codex": "/serving-endpoints/responses",
                "gemini": "/serving-endpoints/google/v1beta/models/",
                "opencode": "/serving-endpoints/chat/completions"},
}


@pytest.fixture(scope="module")
def workspace():
    with FakeWorkspace() as fw:
        fw.model_reply = REPLY
        yield fw


def _run(agent_id: str, mode: str, clis: Path, fw: FakeWorkspace, tmp_path: Path) -> None:
    token = fw.create_token()
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "DATABRICKS_HOST": fw.url}
    if mode == "gateway":
        env["DATABRICKS_GATEWAY_HOST"] = fw.url
    settings = load_settings(env)
    # Only this agent's files (plus ~/.databrickscfg): HOME holds exactly what the writer produced.
    result = agent_config.write_agent_config(agent_id, home, settings, token)
    assert result.status == "ok", result
    project = settings.projects_dir / "demo"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    run_env = session_env(home, project, os.environ)
    run_env.update(PATH=f"{clis / 'bin'}:{run_env['PATH']}", NO_COLOR="1", CI="1")
    argv = COMMANDS[agent_id]
    fw.clear_requests()
    proc = subprocess.run([str(clis / "bin" / argv[0]), *argv[1:]], cwd=project, env=run_env, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{agent_id} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert REPLY in proc.stdout, f"{agent_id} did not print the reply:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    calls = fw.model_requests
    assert calls, f"{agent_id} made no model call"
    model = getattr(settings, get_agent(agent_id).model_field)
    for call in calls:
        assert call.path.startswith(PREFIXES[mode][agent_id]), call.path
        assert call.headers.get("authorization") == f"Bearer {token}"
        assert call.headers.get(CODING_AGENT_HEADER) == "true", (agent_id, call.path)
        assert call.model == model
    # The CLIs must not phone the workspace for anything but models.
    others = [r.path for r in fw.requests if r.path.startswith("/api/")]
    assert not others, others


@pytest.mark.parametrize("mode", ["serving", "gateway"])
@pytest.mark.parametrize("agent_id", ["claude", "codex", "gemini", "opencode"])
def test_real_cli_answers_through_fake_workspace(agent_id: str, mode: str, clis: Path, workspace: FakeWorkspace,
                                                 tmp_path: Path) -> None:
    _run(agent_id, mode, clis, workspace, tmp_path)


def test_pinned_versions_are_what_the_cache_runs(clis: Path) -> None:
    for agent in installable_agents():
        proc = subprocess.run([str(clis / "bin" / agent.executable), "--version"], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "HOME": str(clis)}, stdin=subprocess.DEVNULL)
        assert agent.npm_version in proc.stdout, (agent.id, proc.stdout, proc.stderr)

