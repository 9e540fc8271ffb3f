"""OpenCode: the open-source CLI, on any chat-completions model endpoint.

Reads ``~/.config/opencode/opencode.json``: a provider using the bundled
``@ai-sdk/openai-compatible`` package (no download) pointed at the serving
endpoints' ``/chat/completions``, its model, the ``small_model`` for titles,
and the ``permission`` rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lib.agents import files
from lib.agents.base import CODING_AGENT_HEADERS, PROVIDER_ID, Agent, ConfigResult, ConfigState, unconfigured
from lib.settings import PermissionMode, Settings

# OpenCode runs commands without asking by default: say what it may do.
PERMISSIONS: dict[PermissionMode, Any] = {
    PermissionMode.ASK: {"edit": "ask", "bash": "ask"},
    PermissionMode.EDITS: {"edit": "allow", "bash": "ask"},
    PermissionMode.ALL: "allow",
}


def endpoint(settings: Settings) -> str | None:
    """Always the serving endpoints: the AI Gateway has no chat-completions route for it."""
    return f"{settings.databricks_host}/serving-endpoints" if settings.databricks_host else None


def write_config(home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """``~/.config/opencode/opencode.json`` with an OpenAI-compatible Databricks provider."""
    base_url = endpoint(settings)
    missing = unconfigured("opencode", settings, token, base_url)
    if missing:
        return missing
    path = home / ".config" / "opencode" / "opencode.json"
    existing = files.read_json_object(path)
    providers = existing.get("provider") if isinstance(existing.get("provider"), dict) else {}
    model = settings.opencode_model
    existing.setdefault("$schema", "https://opencode.ai/config.json")
    existing.update(
        {
            "autoupdate": False,
            "share": "disabled",
            "model": f"{PROVIDER_ID}/{model}",
            # Without small_model, title requests go to a model from
            # OpenCode's own catalogue, which the workspace does not serve.
            "small_model": f"{PROVIDER_ID}/{model}",
            "permission": PERMISSIONS[settings.permission_mode],
            "provider": {
                **providers,
                PROVIDER_ID: {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Databricks",
                    "options": {"baseURL": base_url, "apiKey": token, "headers": dict(CODING_AGENT_HEADERS)},
                    "models": {model: {"name": model}},
                },
            },
        }
    )
    files.write_json(path, existing)
    return ConfigResult("opencode", ConfigState.OK, "", (path,))


AGENT = Agent(
    id="opencode",
    name="OpenCode",
    description="Open-source coding agent, on any chat-completions model endpoint.",
    command=("opencode",),
    resume_command=("opencode", "--continue"),
    npm_package="opencode-ai",
    npm_version="1.18.33",
    model_field="opencode_model",
    config_files=(".config/opencode/opencode.json",),
    write_config=write_config,
    endpoint=endpoint,
)
