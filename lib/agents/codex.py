"""Codex: OpenAI's CLI, on GPT models over the Responses API.

Reads ``~/.codex/config.toml``: the model, a ``databricks`` provider
(``base_url``, bearer token, headers), the approval policy and sandbox, and
its own trusted projects. It streams ``POST {base_url}/responses``.
"""

from __future__ import annotations

from pathlib import Path

from lib.agents import files
from lib.agents.base import (
    CODING_AGENT_HEADERS,
    PROVIDER_ID,
    Agent,
    ConfigResult,
    ConfigState,
    model_base_url,
    unconfigured,
)
from lib.settings import PermissionMode, Settings

# (approval_policy, sandbox_mode) per mode. "untrusted" asks before any
# command that is not known to be read-only; the sandbox decides whether
# file edits need a question too.
MODES = {
    PermissionMode.ASK: ("untrusted", "read-only"),
    PermissionMode.EDITS: ("untrusted", "workspace-write"),
    PermissionMode.ALL: ("never", "danger-full-access"),
}


def endpoint(settings: Settings) -> str | None:
    return model_base_url(settings, gateway="openai/v1", serving="serving-endpoints")


def write_config(home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """``~/.codex/config.toml`` with a ``databricks`` Responses-API provider.

    Codex refuses to start when ``env_key`` names an unset variable, and the
    terminal's environment must not carry secrets; the token goes into
    ``experimental_bearer_token`` instead, which Codex prefers when present.
    Codex keeps its own entries (trusted projects, notices) in the same file,
    so it is parsed, updated and written whole.
    """
    base_url = endpoint(settings)
    missing = unconfigured("codex", settings, token, base_url)
    if missing:
        return missing
    path = home / ".codex" / "config.toml"
    existing = files.read_toml(path) or {}
    providers = existing.get("model_providers") if isinstance(existing.get("model_providers"), dict) else {}
    approval, sandbox = MODES[settings.permission_mode]
    ours = {
        "analytics": {"enabled": False},
        "otel": {"metrics_exporter": "none"},
        "features": {"plugins": False},
    }
    merged = files.deep_merge(existing, ours)
    merged["model_providers"] = {
        **providers,
        PROVIDER_ID: {
            "name": "Databricks",
            "base_url": base_url,
            "wire_api": "responses",
            "experimental_bearer_token": token,
            "http_headers": dict(CODING_AGENT_HEADERS),
        },
    }
    top = {"model": settings.codex_model, "model_provider": PROVIDER_ID,
           "approval_policy": approval, "sandbox_mode": sandbox}
    # Top-level keys must come before any table in TOML: put ours first.
    ordered = {**top, **{k: v for k, v in merged.items() if k not in top}}
    files.write_toml(path, ordered)
    return ConfigResult("codex", ConfigState.OK, "", (path,))


def trust(home: Path, folder: Path) -> None:
    """Codex asks about an untrusted folder; only an entry for the exact folder counts."""
    path = home / ".codex" / "config.toml"
    data = files.read_toml(path)
    if data is None:
        return  # unreadable: leave the user's file alone
    key = str(folder)
    trusted = data.get("projects") if isinstance(data.get("projects"), dict) else {}
    if (trusted.get(key) or {}).get("trust_level") != "trusted":
        data["projects"] = {**trusted, key: {**(trusted.get(key) or {}), "trust_level": "trusted"}}
        files.write_toml(path, data)


AGENT = Agent(
    id="codex",
    name="Codex",
    description="OpenAI's coding agent, on GPT models over the Responses API.",
    command=("codex",),
    resume_command=("codex", "resume", "--last"),
    npm_package="@openai/codex",
    npm_version="0.171.0",
    model_field="codex_model",
    config_files=(".codex/config.toml",),
    write_config=write_config,
    trust=trust,
    endpoint=endpoint,
)
