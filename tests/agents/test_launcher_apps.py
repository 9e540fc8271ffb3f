"""Agents start on Databricks Apps, where the server's PATH has no ``~/.local/bin``.

The app runs exactly as the platform starts it (its environment, the
``app.yaml`` command, a fake workspace) with a minimal server ``PATH``
(``/usr/bin:/bin`` plus the venv). The four real CLIs sit in ``~/.local`` as
the boot setup leaves them. Each agent is started through
``POST /api/sessions`` and through the Launch page in a real browser, and
must reach its own prompt on screen.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.settings import load_settings
from lib.terminal.errors import ProgramMissing
from lib.terminal.registry import SessionRegistry
from tests.agentterm import READY
from tests.appsim import AGENTS, NAMES, OWNER_H, close_all
from tests.browser import SCREEN_HAS, browser


def test_server_path_lacks_the_clis(deployed) -> None:
    """The premise: the app process itself cannot find the CLIs on its PATH."""
    environ = Path(f"/proc/{deployed.proc.pid}/environ").read_bytes().split(b"\0")
    path = next(v for v in environ if v.startswith(b"PATH=")).decode()[5:]
    assert ".local" not in path


@pytest.mark.parametrize("agent_id", AGENTS)
def test_agent_starts_through_the_api(deployed, agent_id: str) -> None:
    status, body = deployed.request("POST", "/api/sessions", {"agent": agent_id, "cwd": "demo"}, headers=OWNER_H)
    assert status == 201, body
    try:
        with browser() as b:
            page = b.new_context(extra_http_headers=OWNER_H, viewport={"width": 1300, "height": 900}).new_page()
            page.goto(f"{deployed.url}/?session={body['id']}")
            page.wait_for_function(SCREEN_HAS, arg=READY[agent_id], timeout=60000)
    finally:
        close_all(deployed)


@pytest.mark.parametrize("agent_id", AGENTS)
def test_agent_starts_from_the_launch_page(deployed, agent_id: str) -> None:
    try:
        with browser() as b:
            page = b.new_context(extra_http_headers=OWNER_H, viewport={"width": 1300, "height": 900}).new_page()
            page.goto(f"{deployed.url}/launch")
            page.get_by_role("button", name=f"Start {NAMES[agent_id]}").click(timeout=30000)
            page.wait_for_function(SCREEN_HAS, arg=READY[agent_id], timeout=60000)
        _, sessions = deployed.request("GET", "/api/sessions", headers=OWNER_H)
        assert [s["agent"] for s in sessions] == [agent_id]
        assert sessions[0]["status"] == "running"
    finally:
        close_all(deployed)


def test_missing_cli_names_the_setup_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    registry = SessionRegistry(lambda: load_settings({"HOME": str(home)}))
    with pytest.raises(ProgramMissing) as err:
        registry.create("claude")
    assert err.value.status == 409
    assert 'setup step "Install Claude Code"' in str(err.value)
    assert "Setup page" in str(err.value)
    assert registry.list() == []
