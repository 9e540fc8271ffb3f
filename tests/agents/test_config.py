"""Golden tests of every agent config file, plus the merge and permission rules.

The golden files under ``tests/golden/<case>/`` are the exact bytes written
for a HOME of ``{HOME}`` and the token ``dapi-golden-token``. After an
intended change, regenerate them with ``CODA_UPDATE_GOLDEN=1 pytest
tests/agents/test_config.py`` and review the diff.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from lib.agents import config as agent_config
from lib.agents import files, get_agent
from lib.settings import load_settings

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
TOKEN = "dapi-golden-token"
UPDATE = os.environ.get("CODA_UPDATE_GOLDEN") == "1"

CASES = {
    "gateway": {
        "DATABRICKS_HOST": "https://adb-1234567890123456.7.azuredatabricks.net",
        "DATABRICKS_GATEWAY_HOST": "https://1234567890123456.ai-gateway.azuredatabricks.net",
    },
    "serving": {"DATABRICKS_HOST": "https://adb-1234567890123456.7.azuredatabricks.net"},
    "host_without_https": {"DATABRICKS_HOST": "adb-1234567890123456.7.azuredatabricks.net/"},
}


def _files(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): p.read_text().replace(str(home), "{HOME}")
        for p in sorted(home.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_config_files(case: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    settings = load_settings({"HOME": str(home), **CASES[case]})
    results = agent_config.write_all(home, settings, TOKEN)
    assert all(r.ok for r in results), results
    written = _files(home)
    golden_dir = GOLDEN / case
    if UPDATE:
        for rel, text in written.items():
            (golden_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden_dir / rel).write_text(text)
    expected = {str(p.relative_to(golden_dir)): p.read_text() for p in sorted(golden_dir.rglob("*")) if p.is_file()}
    assert sorted(written) == sorted(expected)
    for rel, text in expected.items():
        assert written[rel] == text, f"{case}/{rel} differs from the golden file"


def test_host_without_https_matches_serving_case() -> None:
    """The platform sometimes drops the scheme: the files must be identical."""
    serving = {str(p.relative_to(GOLDEN / "serving")): p.read_text() for p in (GOLDEN / "serving").rglob("*") if p.is_file()}
    bare = {
        str(p.relative_to(GOLDEN / "host_without_https")): p.read_text()
        for p in (GOLDEN / "host_without_https").rglob("*")
        if p.is_file()
    }
    assert serving == bare
    assert "https://adb-1234567890123456.7.azuredatabricks.net/serving-endpoints" in serving[".codex/config.toml"]


def test_token_files_are_private_and_token_only_where_needed(tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), **CASES["serving"]})
    agent_config.write_all(tmp_path, settings, TOKEN)
    holders = {
        ".claude/settings.json",
        ".codex/config.toml",
        ".gemini/.env",
        ".config/opencode/opencode.json",
        ".databrickscfg",
    }
    for rel, text in _files(tmp_path).items():
        mode = stat.S_IMODE((tmp_path / rel).stat().st_mode)
        assert mode == 0o600, f"{rel} has mode {oct(mode)}"
        assert (TOKEN in text) == (rel in holders), rel


def test_endpoints_per_case() -> None:
    gw = load_settings({"HOME": "/h", **CASES["gateway"]})
    g = "https://1234567890123456.ai-gateway.azuredatabricks.net"
    h = "https://adb-1234567890123456.7.azuredatabricks.net"
    assert get_agent("claude").endpoint(gw) == f"{g}/anthropic"
    assert get_agent("codex").endpoint(gw) == f"{g}/openai/v1"
    assert get_agent("gemini").endpoint(gw) == f"{g}/gemini"
    assert get_agent("opencode").endpoint(gw) == f"{h}/serving-endpoints"
    sv = load_settings({"HOME": "/h", **CASES["serving"]})
    assert get_agent("claude").endpoint(sv) == f"{h}/serving-endpoints/anthropic"
    assert get_agent("codex").endpoint(sv) == f"{h}/serving-endpoints"
    assert get_agent("gemini").endpoint(sv) == f"{h}/serving-endpoints/google"
    assert get_agent("bash").endpoint is None


def test_no_host_writes_only_what_can_be_configured(tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path)})
    results = {r.target: r for r in agent_config.write_all(tmp_path, settings, None)}
    for target in ("claude", "codex", "gemini", "opencode", "databrickscfg"):
        assert results[target].status == "not configured"
        assert results[target].reason == "not configured: no workspace host"
    assert results["bash"].status == "none needed"
    assert sorted(_files(tmp_path)) == [".claude.json", ".gemini/settings.json", ".gemini/trustedFolders.json"]


def test_host_without_token_reports_no_token(tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), **CASES["serving"]})
    results = {r.target: r for r in agent_config.write_all(tmp_path, settings, None)}
    assert results["codex"].reason == "not configured: no token"
    assert agent_config.config_status("codex", settings, None) == "not configured: no token"
    assert agent_config.config_status("codex", settings, TOKEN) is None
    assert not (tmp_path / ".codex" / "config.toml").exists()


def test_unrelated_keys_survive_a_rewrite(tmp_path: Path) -> None:
    home = tmp_path
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_text(
        '{"permissions": {"allow": ["Bash(ls)"]}, "env": {"MY_VAR": "1", "ANTHROPIC_MODEL": "old"}}'
    )
    (home / ".claude.json").write_text('{"numStartups": 7, "projects": {"/x": {"hasTrustDialogAccepted": true}}}')
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text(
        'model = "old"\napproval_policy = "on-request"\n\n[projects."/home/x/projects/demo"]\ntrust_level = "trusted"\n'
        '\n[model_providers.other]\nname = "Other"\nbase_url = "http://other"\n\n[[mcp_list]]\nname = "a"\n'
    )
    (home / ".gemini").mkdir()
    (home / ".gemini" / ".env").write_text("# mine\nFOO=bar\nGEMINI_MODEL=old\n")
    (home / ".gemini" / "settings.json").write_text('{"ui": {"theme": "Dracula"}, "security": {"folderTrust": {"enabled": true}}}')
    (home / ".gemini" / "trustedFolders.json").write_text('{"/elsewhere": "TRUST_FOLDER"}')
    (home / ".config" / "opencode").mkdir(parents=True)
    (home / ".config" / "opencode" / "opencode.json").write_text(
        '{"theme": "tokyonight", "provider": {"mine": {"npm": "x"}}}'
    )
    (home / ".databrickscfg").write_text(
        "; my profiles\n[DEFAULT]\nhost = https://old\ntoken = dapi-old\nauth_type = databricks-cli\ncluster_id = c1\n\n"
        "[other]\nhost = https://other\ntoken = dapi-other\n"
    )
    settings = load_settings({"HOME": str(home), **CASES["serving"], "CODEX_MODEL": "new-model"})
    assert all(r.ok for r in agent_config.write_all(home, settings, TOKEN))

    import json

    claude = json.loads((home / ".claude" / "settings.json").read_text())
    assert claude["permissions"] == {"allow": ["Bash(ls)"], "defaultMode": "default"}
    assert claude["env"]["MY_VAR"] == "1"
    assert claude["env"]["ANTHROPIC_MODEL"] == settings.anthropic_model
    onboarding = json.loads((home / ".claude.json").read_text())
    assert onboarding["numStartups"] == 7 and onboarding["hasCompletedOnboarding"] is True
    codex = tomllib.loads((home / ".codex" / "config.toml").read_text())
    assert codex["model"] == "new-model"
    assert codex["approval_policy"] == "on-request"  # the permission mode setting decides, not the old file
    assert codex["projects"]["/home/x/projects/demo"]["trust_level"] == "trusted"
    assert codex["model_providers"]["other"]["base_url"] == "http://other"
    assert codex["model_providers"]["databricks"]["experimental_bearer_token"] == TOKEN
    assert codex["mcp_list"] == [{"name": "a"}]
    env = (home / ".gemini" / ".env").read_text().splitlines()
    assert env[:2] == ["# mine", "FOO=bar"]
    assert "GEMINI_MODEL=databricks-gemini-3-1-pro" in env and "GEMINI_MODEL=old" not in env
    gemini = json.loads((home / ".gemini" / "settings.json").read_text())
    assert gemini["ui"] == {"theme": "Dracula"}
    assert gemini["security"]["folderTrust"] == {"enabled": True}
    assert gemini["security"]["auth"] == {"selectedType": "gemini-api-key"}
    trusted = json.loads((home / ".gemini" / "trustedFolders.json").read_text())
    assert trusted["/elsewhere"] == "TRUST_FOLDER" and trusted[str(home / "projects")] == "TRUST_FOLDER"
    opencode = json.loads((home / ".config" / "opencode" / "opencode.json").read_text())
    assert opencode["theme"] == "tokyonight" and opencode["provider"]["mine"] == {"npm": "x"}
    cfg = (home / ".databrickscfg").read_text()
    assert cfg.startswith("; my profiles\n[DEFAULT]\n")
    assert "token = dapi-golden-token" in cfg and "dapi-old" not in cfg
    assert "auth_type" not in cfg and "cluster_id = c1" in cfg
    assert "[other]\nhost = https://other\ntoken = dapi-other" in cfg

    # Writing twice changes nothing: the writers are idempotent.
    before = _files(home)
    agent_config.write_all(home, settings, TOKEN)
    assert _files(home) == before


def test_toml_round_trip_of_odd_values() -> None:
    doc = {
        "a": 1,
        "b": 1.5,
        "c": "quote \" and \\ and \n newline",
        "d": [1, 2],
        "e": {"inline": {"x": True}},
        "weird key": "v",
        "t": {"deep": {"er": {"k": "v"}}},
        "arr": [{"x": 1}, {"x": 2}],
    }
    assert tomllib.loads(files.toml_dumps(doc)) == doc


def test_trust_project_records_the_exact_folder_and_keeps_the_rest(tmp_path: Path) -> None:
    import json

    home = tmp_path / "home"
    settings = load_settings({"HOME": str(home), **CASES["serving"]})
    agent_config.write_all(home, settings, TOKEN)
    (home / ".claude.json").write_text('{"hasCompletedOnboarding": true, "projects": {"/other": {"x": 1}}}')
    project = settings.projects_dir / "demo"
    project.mkdir(parents=True)
    agent_config.trust_project(home, project)
    claude = json.loads((home / ".claude.json").read_text())
    assert claude["projects"][str(project)] == {"hasTrustDialogAccepted": True}
    assert claude["projects"]["/other"] == {"x": 1}
    codex = tomllib.loads((home / ".codex" / "config.toml").read_text())
    assert codex["projects"][str(project)] == {"trust_level": "trusted"}
    assert codex["model_providers"]["databricks"]["experimental_bearer_token"] == TOKEN
    # ~/projects is already trusted for Gemini, so nothing is added there.
    assert json.loads((home / ".gemini" / "trustedFolders.json").read_text()) == {str(home / "projects"): "TRUST_FOLDER"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    agent_config.trust_project(home, elsewhere)
    assert json.loads((home / ".gemini" / "trustedFolders.json").read_text())[str(elsewhere)] == "TRUST_FOLDER"
    # A later config rewrite keeps the trust entries.
    agent_config.write_all(home, settings, TOKEN)
    assert tomllib.loads((home / ".codex" / "config.toml").read_text())["projects"][str(project)]["trust_level"] == "trusted"
    assert json.loads((home / ".claude.json").read_text())["projects"][str(project)]["hasTrustDialogAccepted"] is True
    for rel in (".claude.json", ".codex/config.toml"):
        assert stat.S_IMODE((home / rel).stat().st_mode) == 0o600
