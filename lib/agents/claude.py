"""Claude Code: Anthropic's CLI, on Claude models served by the workspace.

Reads ``~/.claude/settings.json`` (an ``env`` block: base URL, token, model,
headers; ``permissions.defaultMode``) and ``~/.claude.json`` (onboarding done,
trusted folders). It streams ``POST {base}/v1/messages``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from lib.agents import files
from lib.agents.base import (
    CODING_AGENT_HEADER,
    CODING_AGENT_HEADER_VALUE,
    Agent,
    ConfigResult,
    ConfigState,
    model_base_url,
    unconfigured,
)
from lib.settings import PermissionMode, Settings

# Claude Code 2.1 starts in "auto" mode unless told otherwise, and auto mode's
# safety check is not available through Databricks endpoints.
DEFAULT_MODES = {
    PermissionMode.ASK: "default",
    PermissionMode.EDITS: "acceptEdits",
    PermissionMode.ALL: "bypassPermissions",
}


def endpoint(settings: Settings) -> str | None:
    return model_base_url(settings, gateway="anthropic", serving="serving-endpoints/anthropic")


def write_config(home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """``~/.claude/settings.json`` (env block, permission mode) and ``~/.claude.json`` (onboarding done)."""
    onboarding = home / ".claude.json"
    files.write_json(onboarding, {**files.read_json_object(onboarding), "hasCompletedOnboarding": True})
    base_url = endpoint(settings)
    missing = unconfigured("claude", settings, token, base_url, (onboarding,))
    if missing:
        return missing
    path = home / ".claude" / "settings.json"
    existing = files.read_json_object(path)
    env = existing.get("env") if isinstance(existing.get("env"), dict) else {}
    model = settings.anthropic_model
    existing["env"] = {
        **env,
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_AUTH_TOKEN": token,
        "ANTHROPIC_MODEL": model,
        # Background calls (titles, summaries) go to the "fast" model: keep
        # them on an endpoint that exists in the workspace.
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "ANTHROPIC_CUSTOM_HEADERS": f"{CODING_AGENT_HEADER}: {CODING_AGENT_HEADER_VALUE}",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    permissions = existing.get("permissions") if isinstance(existing.get("permissions"), dict) else {}
    existing["permissions"] = {**permissions, "defaultMode": DEFAULT_MODES[settings.permission_mode]}
    if settings.permission_mode is PermissionMode.ALL:
        # The user chose "run everything" in the sidebar, with its warning:
        # do not ask again with Claude's own disclaimer at every start.
        existing["skipDangerousModePermissionPrompt"] = True
    else:
        existing.pop("skipDangerousModePermissionPrompt", None)
    files.write_json(path, existing)
    return ConfigResult("claude", ConfigState.OK, "", (path, onboarding))


def trust(home: Path, folder: Path) -> None:
    """Claude asks "trust this folder?" (default answer: exit) unless the exact folder is recorded."""
    path = home / ".claude.json"
    data = files.read_json_object(path)
    projects = data.get("projects") if isinstance(data.get("projects"), dict) else {}
    key = str(folder)
    entry = projects.get(key) if isinstance(projects.get(key), dict) else {}
    if entry.get("hasTrustDialogAccepted") is not True:
        data["projects"] = {**projects, key: {**entry, "hasTrustDialogAccepted": True}}
        files.write_json(path, data)


def session_env(settings: Settings) -> Mapping[str, str]:
    """Claude refuses ``bypassPermissions`` as root unless it is told it runs in a sandbox."""
    if settings.permission_mode is PermissionMode.ALL and os.getuid() == 0:
        return {"IS_SANDBOX": "1"}
    return {}


AGENT = Agent(
    id="claude",
    name="Claude Code",
    description="Anthropic's coding agent, on Claude models served by your workspace.",
    command=("claude",),
    resume_command=("claude", "--continue"),
    npm_package="@anthropic-ai/claude-code",
    npm_version="2.1.332",
    model_field="anthropic_model",
    config_files=(".claude/settings.json", ".claude.json"),
    write_config=write_config,
    trust=trust,
    endpoint=endpoint,
    session_env=session_env,
)
