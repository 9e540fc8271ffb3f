"""Settings saved from the sidebar reach the agents' config files at once."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from lib.agents import setup as boot
from lib.settings import SettingsError, load_settings, reset_overrides, save_overrides
from lib.workspace import tokens

TOKEN = "dapi-settings-test"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "DATABRICKS_HOST": "https://adb-1.azuredatabricks.net", "CODEX_MODEL": "deploy-gpt"}


@pytest.fixture
def runner() -> boot.BootSetup:
    store = tokens.TokenStore(check=lambda host, token: tokens.CheckOutcome(tokens.OK, user="me@example.com"))
    return boot.BootSetup(token_store=store)


def _codex(home: Path) -> dict:
    return tomllib.loads((home / ".codex" / "config.toml").read_text())


def _snapshot(home: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


def test_saved_model_rewrites_config_and_survives_reload(env: dict[str, str], runner: boot.BootSetup) -> None:
    home = Path(env["HOME"])
    settings = load_settings(env)
    assert runner._tokens.submit(settings, TOKEN).state == tokens.OK
    runner.rewrite_configs(settings)
    assert _codex(home)["model"] == "deploy-gpt"

    new = save_overrides({"codex_model": "databricks-gpt-5-mini", "anthropic_model": "databricks-claude-sonnet-4-5"}, env)
    results = runner.rewrite_configs(new)
    assert all(r.ok for r in results)
    assert _codex(home)["model"] == "databricks-gpt-5-mini"
    claude = json.loads((home / ".claude" / "settings.json").read_text())
    assert claude["env"]["ANTHROPIC_MODEL"] == "databricks-claude-sonnet-4-5"
    assert runner.step("configs").state == "ok"

    reloaded = load_settings(env)
    assert reloaded.codex_model == "databricks-gpt-5-mini"
    assert reloaded.anthropic_model == "databricks-claude-sonnet-4-5"

    # Gateway host: the same Save moves Claude/Codex/Gemini to it.
    runner.rewrite_configs(save_overrides({"gateway_host": "gw.example.com"}, env))
    assert _codex(home)["model_providers"]["databricks"]["base_url"] == "https://gw.example.com/openai/v1"
    assert "GOOGLE_GEMINI_BASE_URL=https://gw.example.com/gemini" in (home / ".gemini" / ".env").read_text()

    # Reset: deployment defaults come back, and so do the files.
    runner.rewrite_configs(reset_overrides(env))
    assert _codex(home)["model"] == "deploy-gpt"
    assert _codex(home)["model_providers"]["databricks"]["base_url"] == "https://adb-1.azuredatabricks.net/serving-endpoints"


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"codex_model": "bad model name!"}, "characters a model endpoint name cannot have"),
        ({"codex_model": ""}, "cannot be empty"),
        ({"session_cap": "lots"}, "whole number"),
        ({"session_cap": 0}, "between 1 and 50"),
        ({"font_size": 99}, "between 8 and 32"),
        ({"theme": "neon"}, "theme must be one of"),
        ({"gateway_host": "not a url"}, "not a valid host URL"),
        ({"default_project": "../etc"}, "plain folder name"),
        ({"databricks_host": "https://evil.example.com"}, "cannot be changed from the app"),
        ({"codex_model": "fine-model", "font_size": 1}, "between 8 and 32"),
    ],
)
def test_bad_values_change_nothing(env: dict[str, str], runner: boot.BootSetup, changes: dict, words: str) -> None:
    home = Path(env["HOME"])
    settings = load_settings(env)
    runner._tokens.submit(settings, TOKEN)
    runner.rewrite_configs(settings)
    save_overrides({"anthropic_model": "databricks-claude-sonnet-4-5"}, env)
    before = _snapshot(home)
    with pytest.raises(SettingsError) as err:
        save_overrides(changes, env)
    assert words in str(err.value)
    assert _snapshot(home) == before
    assert load_settings(env).codex_model == "deploy-gpt"
