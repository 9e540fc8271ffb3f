"""Agents start on Databricks Apps, where the server's PATH has no ``~/.local/bin``.

The app runs exactly as the platform starts it (its environment, the
``app.yaml`` command, a fake workspace) with a minimal server ``PATH``
(``/usr/bin:/bin`` plus the venv). The four real CLIs sit in ``~/.local`` as
the boot setup leaves them. Each agent is started through
``POST /api/sessions`` and through the Launch page in a real browser, and
must reach its own prompt on screen.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from lib.terminal.registry import SessionRegistry
from lib.terminal.session import ProgramMissing
from lib.settings import load_settings
from tests.browser import browser
from tests.fakeworkspace import FakeWorkspace
from tests.test_agent_clis import clis  # noqa: F401  (session fixture: the pinned CLIs)
from tests.test_agent_interactive import READY, _kill_leftovers
from tests.test_apps_access import OWNER, start_on_apps, wait_owner

AGENTS = ("claude", "codex", "gemini", "opencode")
NAMES = {"claude": "Claude Code", "codex": "Codex", "gemini": "Gemini CLI", "opencode": "OpenCode"}
OWNER_H = {"X-Forwarded-Email": OWNER}
SERVER_PATH = f"{Path(sys.executable).parent}:/usr/bin:/bin"

_SCREEN_HAS = """(needle) => {
    const t = window.__codaTerm; if (!t) return false;
    const b = t.buffer.active; let text = "";
    for (let i = 0; i < b.length; i++) text += b.getLine(i).translateToString(true);
    return text.replace(/\\s+/g, "").includes(needle);
}"""


@pytest.fixture(scope="module")
def deployed(clis: Path, tmp_path_factory):  # noqa: F811
    fw = FakeWorkspace(owner_email=OWNER, app_name="coda-app")
    fw.start()
    token = fw.create_token(user=OWNER)
    home = tmp_path_factory.mktemp("launcher") / "home"
    home.mkdir()
    (home / ".local").symlink_to(clis)  # what the boot setup's npm installs leave
    project = home / "projects" / "demo"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    server = start_on_apps(home, fw, DATABRICKS_TOKEN=token, PATH=SERVER_PATH)
    wait_owner(server, OWNER)
    deadline = time.monotonic() + 90
    while server.request("GET", "/health")[1].get("setup") != "ok":
        assert time.monotonic() < deadline, f"setup never finished:\n{server.log()[-3000:]}"
        time.sleep(0.3)
    yield server
    server.stop()
    fw.stop()
    _kill_leftovers(home)


def _close_all(server) -> None:
    _, sessions = server.request("GET", "/api/sessions", headers=OWNER_H)
    for s in sessions or []:
        server.request("DELETE", f"/api/sessions/{s['id']}", headers=OWNER_H)


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
            page.wait_for_function(_SCREEN_HAS, arg=READY[agent_id], timeout=60000)
    finally:
        _close_all(deployed)


@pytest.mark.parametrize("agent_id", AGENTS)
def test_agent_starts_from_the_launch_page(deployed, agent_id: str) -> None:
    try:
        with browser() as b:
            page = b.new_context(extra_http_headers=OWNER_H, viewport={"width": 1300, "height": 900}).new_page()
            page.goto(f"{deployed.url}/launch")
            page.get_by_role("button", name=f"Start {NAMES[agent_id]}").click(timeout=30000)
            page.wait_for_function(_SCREEN_HAS, arg=READY[agent_id], timeout=60000)
        _, sessions = deployed.request("GET", "/api/sessions", headers=OWNER_H)
        assert [s["agent"] for s in sessions] == [agent_id]
        assert sessions[0]["status"] == "running"
    finally:
        _close_all(deployed)


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
