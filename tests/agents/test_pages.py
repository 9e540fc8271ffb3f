"""The sidebar, launch and setup pages, run headless with Streamlit's AppTest."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.agents import get_agent
from lib.runtime import runtime
from lib.settings import load_settings
from lib.terminal.pump import LoopPump
from lib.workspace import tokens
from tests.fakeworkspace import FakeWorkspace

ROOT = Path(__file__).resolve().parents[2]
OWNER = "owner.person@example.com"


def _sidebar_script() -> None:
    from views.sidebar import render_sidebar

    render_sidebar()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    for var in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_GATEWAY_HOST", "DATABRICKS_APP_NAME",
                "DATABRICKS_APP_PORT", "CODEX_MODEL", "ANTHROPIC_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(ROOT)
    runtime().tokens.clear()
    yield home
    runtime().tokens.clear()


@pytest.fixture
def workspace():
    with FakeWorkspace(owner_email=OWNER) as fw:
        yield fw


def _button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button '{label}' in {[b.label for b in at.button]}"
    return matches[0]


def _texts(at: AppTest) -> str:
    parts = []
    for kind in ("error", "warning", "info", "success", "caption", "markdown"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def test_sidebar_token_form_then_model_save(home: Path, workspace: FakeWorkspace,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
    at = AppTest.from_function(_sidebar_script, default_timeout=60).run()
    assert not at.exception, at.exception
    assert "No workspace token yet" in _texts(at)

    # A bad token is refused and nothing is written.
    at.text_input(key="sb_token_input").input("dapi-wrong")
    _button(at, "Use this token").click().run()
    assert "rejected" in _texts(at)
    assert not (home / ".codex" / "config.toml").exists()

    token = workspace.create_token()
    at.text_input(key="sb_token_input").input(token)
    _button(at, "Use this token").click().run()
    assert not at.exception, at.exception
    assert f"Token works for {OWNER}" in _texts(at)
    assert token not in _texts(at)
    assert at.session_state["sb_token_input"] in ("", None), "the form must not keep the token"
    assert tomllib.loads((home / ".codex" / "config.toml").read_text())["model"] == "databricks-gpt-5-2"

    # With a token, models are picked from the workspace's serving endpoints.
    at.run()
    codex = at.selectbox(key="sb_codex_model")
    assert "databricks-claude-sonnet-4-5" in codex.options
    codex.set_value("databricks-claude-sonnet-4-5")
    _button(at, "Save").click().run()
    assert not at.exception, at.exception
    assert "Running sessions keep their old settings" in _texts(at)
    assert tomllib.loads((home / ".codex" / "config.toml").read_text())["model"] == "databricks-claude-sonnet-4-5"
    assert load_settings().codex_model == "databricks-claude-sonnet-4-5"

    # A bad value: a clear message and nothing changes.
    at.number_input(key="sb_session_cap").set_value(3)
    at.text_input(key="sb_gateway_host").input("not a url")
    before = (home / ".codex" / "config.toml").read_bytes()
    _button(at, "Save").click().run()
    assert "Not saved" in _texts(at) and "not a valid host URL" in _texts(at)
    assert (home / ".codex" / "config.toml").read_bytes() == before
    assert load_settings().session_cap == 5

    _button(at, "Reset to deployment defaults").click().run()
    assert not at.exception, at.exception
    assert tomllib.loads((home / ".codex" / "config.toml").read_text())["model"] == "databricks-gpt-5-2"


def test_sidebar_without_workspace_uses_free_text(home: Path) -> None:
    at = AppTest.from_function(_sidebar_script, default_timeout=30).run()
    assert not at.exception, at.exception
    # Nothing set up for models is a next step, not a failure: shells and sync work without it.
    assert any("databricks auth login" in str(e.value) for e in at.info), [str(e.value) for e in at.info]
    assert not any("not configured" in str(e.value) for e in at.error)
    assert at.text_input(key="sb_codex_model").value == "databricks-gpt-5-2"
    at.text_input(key="sb_codex_model").input("my-endpoint")
    _button(at, "Save").click().run()
    assert load_settings().codex_model == "my-endpoint"
    assert not (home / ".codex" / "config.toml").exists(), "no host: no half-configured Codex"


def test_launch_cards_say_why_and_offer_the_fix(home: Path) -> None:
    at = AppTest.from_file(str(ROOT / "views" / "launch.py"), default_timeout=30).run()
    assert not at.exception, at.exception
    labels = [b.label for b in at.button]
    assert "Start Shell" in labels
    assert "Start Claude Code" not in labels and "Install now" in labels
    assert "not installed" in _texts(at)


def test_launch_card_for_installed_agent_without_host(home: Path, clis: Path) -> None:
    cache = clis
    agent = get_agent("codex")
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "codex").symlink_to(cache / "bin" / "codex")
    (home / ".local" / "lib" / "node_modules" / "@openai").mkdir(parents=True)
    (home / ".local" / "lib" / "node_modules" / agent.npm_package).symlink_to(
        cache / "lib" / "node_modules" / agent.npm_package)
    at = AppTest.from_file(str(ROOT / "views" / "launch.py"), default_timeout=30).run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "not configured: no workspace host" in text
    assert f"yes, {agent.npm_version}" in text
    assert "Start Codex" not in [b.label for b in at.button]


def test_create_project_makes_a_git_repo(home: Path) -> None:
    from lib.projects import create_project, list_projects

    settings = load_settings()
    folder = create_project(settings, "demo")
    assert (folder / ".git").is_dir()
    assert list_projects(settings) == ["demo"]
    with pytest.raises(ValueError, match="already exists"):
        create_project(settings, "demo")
    with pytest.raises(ValueError, match="plain folder name"):
        create_project(settings, "../escape")
    with pytest.raises(ValueError, match="type a name"):
        create_project(settings, "  ")
    out = subprocess.run(["git", "-C", str(folder), "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True)
    assert out.stdout.strip() == "true"


def test_setup_page_shows_errors_and_retries(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lib.agents import setup as boot
    from lib.agents.installer import InstallResult

    calls: list[str] = []

    def failing_install(agent, home_dir):
        calls.append(agent.id)
        if agent.id == "gemini":
            return InstallResult(ok=False, error="npm install @google/gemini-cli failed: npm error 404 boom")
        return InstallResult(ok=True, skipped=True, version=agent.npm_version)

    runner = boot.BootSetup(token_store=tokens.TokenStore(), install=failing_install, owner=lambda wait: (None, None))
    monkeypatch.setattr(runtime(), "setup", runner)
    runner.start(load_settings())
    assert runner.wait(30)
    at = AppTest.from_file(str(ROOT / "views" / "setup.py"), default_timeout=30).run()
    assert not at.exception, at.exception
    assert "npm error 404 boom" in _texts(at)
    labels = [str(e.label) for e in at.get("status")]
    assert any("Install Gemini CLI" in label and "failed" in label for label in labels), labels
    assert any("Install Codex" in label and "ok" in label for label in labels), labels
    # Why a step did nothing is in view without a click: the token step (no token here) is open.
    token = next(e for e in at.get("status") if "Check the workspace token" in str(e.label))
    assert "skipped" in str(token.label) and token.proto.expanded, token.proto
    calls.clear()
    _button(at, "Retry failed steps").click().run()
    assert runner.wait(30)
    assert calls == ["gemini"], "only the failed step runs again"


def test_launcher_starts_a_shell_in_a_new_project_and_opens_it(home: Path, running_loop) -> None:
    runtime().sessions.use_pump(LoopPump(running_loop))  # what the app's lifespan does
    at = AppTest.from_file(str(ROOT / "ui.py"), default_timeout=30).run()
    assert not at.exception, at.exception
    at.switch_page("views/launch.py").run()
    assert not at.exception, at.exception
    at.text_input(key="launch_new_project").input("fresh")
    _button(at, "Start Shell").click().run()
    assert not at.exception, at.exception
    session_id = at.session_state["open_session"]
    try:
        session = runtime().sessions.get(session_id)
        assert session.agent == "bash"
        assert Path(session.cwd) == home / "projects" / "fresh"
        assert (home / "projects" / "fresh" / ".git").is_dir()
        # A shell session records no agent trust (only an agent's own session does, for its folder).
        claude_file = home / ".claude.json"
        claude = json.loads(claude_file.read_text()) if claude_file.exists() else {}
        assert str(home / "projects" / "fresh") not in claude.get("projects", {})
    finally:
        runtime().sessions.close(session_id)
