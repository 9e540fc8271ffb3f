"""Agent configs in gateway mode: golden bytes, no workspace token in any agent file, and a direct
config left behind by an earlier version is cleaned of its token.

The golden files under ``tests/golden/loopback/`` are what the app writes for
a HOME of ``{HOME}``, the gateway at ``http://127.0.0.1:8000/_coda/local/gateway``
and the token ``dapi-golden-token`` (which only ``~/.databrickscfg`` gets, for
the sync hook). Regenerate after an intended change with
``CODA_UPDATE_GOLDEN=1 pytest tests/gateway/test_config.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest

from lib.agents import config as agent_config
from lib.agents.base import NO_HOST, Loopback
from lib.attention import install as attention
from lib.settings import load_settings

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "loopback"
TOKEN = "dapi-golden-token"
GATEWAY = Loopback("http://127.0.0.1:8000/_coda/local/gateway")
HOST = "https://adb-1234567890123456.7.azuredatabricks.net"
UPDATE = os.environ.get("CODA_UPDATE_GOLDEN") == "1"
AGENT_FILES = {".claude/settings.json", ".claude.json", ".codex/config.toml", ".gemini/.env", ".gemini/settings.json",
               ".gemini/trustedFolders.json", ".config/opencode/opencode.json"}
# The attention hooks (lib.attention): the script every hook runs, Codex's hook list, OpenCode's plugin.
HOOK_FILES = {".coda/hooks/attention.sh", ".codex/hooks.json", ".config/opencode/plugin/coda-attention.js",
              ".config/opencode/.npmrc"}


# Copied verbatim from the package: compared with their source, not kept twice as golden copies.
VERBATIM = {".coda/hooks/attention.sh": attention.SCRIPT_SOURCE,
            ".config/opencode/plugin/coda-attention.js": attention.PLUGIN_SOURCE}


def _files(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): p.read_text().replace(str(home), "{HOME}")
            for p in sorted(home.rglob("*")) if p.is_file()}


def test_golden_gateway_configs(tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": HOST})
    results = agent_config.write_all(tmp_path, settings, TOKEN, gateway=GATEWAY)
    assert all(r.ok for r in results), results
    written = _files(tmp_path)
    if UPDATE:
        for rel, text in written.items():
            if rel not in VERBATIM:
                (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
                (GOLDEN / rel).write_text(text)
    expected = {str(p.relative_to(GOLDEN)): p.read_text() for p in sorted(GOLDEN.rglob("*")) if p.is_file()}
    expected.update({rel: source.read_text() for rel, source in VERBATIM.items()})
    assert sorted(written) == sorted(expected)
    for rel, text in expected.items():
        assert written[rel] == text, f"loopback/{rel} differs from the golden file"


def test_no_agent_file_holds_a_token_and_all_are_private(tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": HOST})
    agent_config.write_all(tmp_path, settings, TOKEN, gateway=GATEWAY)
    files = _files(tmp_path)
    assert set(files) == AGENT_FILES | HOOK_FILES | {".databrickscfg"}
    for rel, text in files.items():
        assert stat.S_IMODE((tmp_path / rel).stat().st_mode) == 0o600, rel
        assert (TOKEN in text) == (rel == ".databrickscfg"), rel
    claude = json.loads(files[".claude/settings.json"])
    assert claude["env"]["ANTHROPIC_BASE_URL"] == f"{GATEWAY.url}/anthropic"
    assert claude["apiKeyHelper"] == 'printf %s "$CODA_SESSION_KEY"'
    codex = tomllib.loads(files[".codex/config.toml"])["model_providers"]["databricks"]
    assert codex["base_url"] == f"{GATEWAY.url}/openai" and codex["env_key"] == "CODA_SESSION_KEY"
    assert "experimental_bearer_token" not in codex
    assert f"GOOGLE_GEMINI_BASE_URL={GATEWAY.url}/gemini\n" in files[".gemini/.env"]
    opencode = json.loads(files[".config/opencode/opencode.json"])["provider"]["databricks"]["options"]
    assert opencode["apiKey"] == "{env:CODA_SESSION_KEY}" and opencode["baseURL"] == f"{GATEWAY.url}/chat"


def test_gateway_configs_need_no_host_and_no_token(tmp_path: Path) -> None:
    """Locally with only a ~/.databrickscfg profile: agents are configured all the same."""
    settings = load_settings({"HOME": str(tmp_path)})
    results = {r.target: r for r in agent_config.write_all(tmp_path, settings, None, gateway=GATEWAY)}
    for agent_id in ("claude", "codex", "gemini", "opencode"):
        assert results[agent_id].status == "ok", results[agent_id]
    assert results["databrickscfg"].reason == NO_HOST  # the user's own file is left alone
    assert not (tmp_path / ".databrickscfg").exists()


USER_HOOK = {"hooks": [{"type": "command", "command": "echo done"}]}


def test_moving_to_the_gateway_removes_old_tokens(tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": HOST})
    agent_config.write_all(tmp_path, settings, TOKEN)  # an earlier version's direct configs
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(
        {**json.loads((tmp_path / ".claude" / "settings.json").read_text()), "hooks": {"Stop": [USER_HOOK]}}))
    agent_config.write_all(tmp_path, settings, TOKEN, gateway=GATEWAY)
    for rel, text in _files(tmp_path).items():
        assert (TOKEN in text) == (rel == ".databrickscfg"), rel
    stop = json.loads((tmp_path / ".claude" / "settings.json").read_text())["hooks"]["Stop"]
    assert stop[0] == USER_HOOK and "attention.sh" in stop[1]["hooks"][0]["command"]  # the user's hook kept
    # And back: a direct config drops the gateway's key helper.
    agent_config.write_all(tmp_path, settings, TOKEN)
    assert "apiKeyHelper" not in json.loads((tmp_path / ".claude" / "settings.json").read_text())
    # Idempotent in gateway mode too.
    agent_config.write_all(tmp_path, settings, TOKEN, gateway=GATEWAY)
    before = _files(tmp_path)
    agent_config.write_all(tmp_path, settings, TOKEN, gateway=GATEWAY)
    assert _files(tmp_path) == before


@pytest.mark.parametrize("problem", [None, "not configured: no workspace credentials. Run `databricks auth login`"])
def test_cards_follow_the_gateway_credentials(problem: str | None) -> None:
    settings = load_settings({"HOME": "/h"})
    access = Loopback(GATEWAY.url, problem)
    for agent_id in ("claude", "codex", "gemini", "opencode"):
        assert agent_config.config_status(agent_id, settings, access) == problem
    assert agent_config.config_status("bash", settings, access) is None
