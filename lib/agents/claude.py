"""Claude Code: Anthropic's CLI, on Claude models served by the workspace.

Reads ``~/.claude/settings.json`` (an ``env`` block: base URL, model,
headers; ``apiKeyHelper``; ``permissions.defaultMode``) and ``~/.claude.json``
(onboarding done, trusted folders). It streams ``POST {base}/v1/messages``.

Through the app's gateway the key is the session's: ``apiKeyHelper`` prints
``$CODA_SESSION_KEY`` (Claude sends it as ``Authorization: Bearer`` and
``x-api-key``), so the one settings file serves every session and holds no
secret. A direct config carries ``ANTHROPIC_AUTH_TOKEN`` instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from lib.agents import files
from lib.agents.base import (
    CODING_AGENT_HEADER,
    CODING_AGENT_HEADER_VALUE,
    SESSION_KEY_ENV,
    Agent,
    ConfigResult,
    ConfigState,
    Conversation,
    Loopback,
    ModelAccess,
    args_with_id,
    model_base_url,
    modified_at,
    unconfigured,
)
from lib.agents.hooks import write_json_hooks
from lib.attention import install as attention
from lib.settings import PermissionMode, Settings

# Claude Code 2.1 starts in "auto" mode unless told otherwise, and auto mode's
# safety check is not available through Databricks endpoints.
DEFAULT_MODES = {
    PermissionMode.ASK: "default",
    PermissionMode.EDITS: "acceptEdits",
    PermissionMode.ALL: "bypassPermissions",
}


API = "anthropic"
# Prints the session's key; run by Claude Code in the session's environment.
API_KEY_HELPER = f'printf %s "${SESSION_KEY_ENV}"'


def endpoint(settings: Settings) -> str | None:
    return model_base_url(settings, API)


def write_config(home: Path, settings: Settings, access: ModelAccess) -> ConfigResult:
    """``~/.claude/settings.json`` (env block, key helper, permission mode) and ``~/.claude.json`` (onboarding)."""
    onboarding = home / ".claude.json"
    files.write_json(onboarding, {**files.read_json_object(onboarding), "hasCompletedOnboarding": True,
                                  # Any mode but "auto" otherwise opens on "Make auto mode your default?".
                                  "hasSeenAutoDefaultNudge": True})
    if isinstance(access, Loopback):
        base_url: str | None = access.api(API)
        auth: dict[str, str] = {}
    else:
        base_url = endpoint(settings)
        missing = unconfigured("claude", settings, access, base_url, (onboarding,))
        if missing:
            return missing
        auth = {"ANTHROPIC_AUTH_TOKEN": str(access)}
    path = home / ".claude" / "settings.json"
    existing = files.read_json_object(path)
    env = existing.get("env") if isinstance(existing.get("env"), dict) else {}
    if not auth:  # through the gateway: a token from an earlier direct config must go
        env = {k: v for k, v in env.items() if k != "ANTHROPIC_AUTH_TOKEN"}
    model = settings.anthropic_model
    existing["env"] = {
        **env,
        "ANTHROPIC_BASE_URL": base_url,
        **auth,
        "ANTHROPIC_MODEL": model,
        # Background calls (titles, summaries) go to the "fast" model: keep
        # them on an endpoint that exists in the workspace.
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "ANTHROPIC_CUSTOM_HEADERS": f"{CODING_AGENT_HEADER}: {CODING_AGENT_HEADER_VALUE}",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    # Claude refuses bypassPermissions as root ("cannot be used with root/sudo
    # privileges") unless told it runs in a sandbox; containers often run as root.
    existing["env"].pop("IS_SANDBOX", None)
    if settings.permission_mode is PermissionMode.ALL and os.getuid() == 0:
        existing["env"]["IS_SANDBOX"] = "1"
    if isinstance(access, Loopback):
        existing["apiKeyHelper"] = API_KEY_HELPER
    elif existing.get("apiKeyHelper") == API_KEY_HELPER:
        del existing["apiKeyHelper"]
    permissions = existing.get("permissions") if isinstance(existing.get("permissions"), dict) else {}
    existing["permissions"] = {**permissions, "defaultMode": DEFAULT_MODES[settings.permission_mode]}
    if settings.permission_mode is PermissionMode.ALL:
        # The user chose "run everything" in the sidebar, with its warning:
        # do not ask again with Claude's own disclaimer at every start.
        existing["skipDangerousModePermissionPrompt"] = True
    else:
        existing.pop("skipDangerousModePermissionPrompt", None)
    files.write_json(path, existing)
    write_attention_hooks(home, access)
    return ConfigResult("claude", ConfigState.OK, "", (path, onboarding))


# Claude Code's hooks that tell the app what the agent is doing (lib.attention.events):
# PermissionRequest fires as the permission dialog opens (the Notification
# "permission_prompt" only 6 s later); Notification also brings elicitations and idle prompts.
ATTENTION_EVENTS = ("SessionStart", "UserPromptSubmit", "PermissionRequest", "PostToolUse", "PostToolUseFailure",
                    "Notification", "Stop", "SessionEnd")
_TOOL_EVENTS = ("PermissionRequest", "PostToolUse", "PostToolUseFailure")


def write_attention_hooks(home: Path, access: ModelAccess) -> None:
    """Our hooks in ``~/.claude/settings.json``; tool events match every tool."""

    def group(event: str) -> dict[str, Any]:
        hook = {"type": "command", "command": attention.command("claude", event), "timeout": attention.TIMEOUT_S}
        return {"matcher": "*", "hooks": [hook]} if event in _TOOL_EVENTS else {"hooks": [hook]}

    write_json_hooks(home, home / ".claude" / "settings.json", access, ATTENTION_EVENTS, group)


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



# ---------------------------------------------------------------- resume by id
# Claude Code 2.1 takes the id of a new conversation up front (``--session-id <uuid>``)
# and keeps each conversation in ``~/.claude/projects/<folder slug>/<id>.jsonl``, the
# slug being the folder's path with every character but letters and digits as "-".
_SLUG_MAX = 200  # longer slugs are cut (and get a suffix) by the CLI: match on the cut part


def conversations(home: Path, folder: Path, since: float) -> list[Conversation]:
    """Conversations of ``folder`` in ``~/.claude/projects`` written since ``since``, oldest first."""
    root = home / ".claude" / "projects"
    slug = re.sub(r"[^A-Za-z0-9]", "-", str(folder))
    dirs = [root / slug]
    if len(slug) > _SLUG_MAX and root.is_dir():
        dirs = [d for d in root.iterdir() if d.name.startswith(slug[:_SLUG_MAX])]
    found = []
    for d in dirs:
        try:
            files = list(d.glob("*.jsonl"))
        except OSError:
            continue
        for path in files:
            mtime = modified_at(path)
            if mtime is not None and mtime >= since:
                found.append(Conversation(path.stem, mtime, mtime, str(path)))
    return sorted(found, key=lambda c: c.started_at)


AGENT = Agent(
    id="claude",
    name="Claude Code",
    description="Anthropic's coding agent, on Claude models served by your workspace.",
    command=("claude",),
    resume_command=("claude", "--continue"),
    npm_package="@anthropic-ai/claude-code",
    npm_version="2.1.332",
    model_field="anthropic_model",
    write_config=write_config,
    trust=trust,
    endpoint=endpoint,
    new_conversation_args=args_with_id("--session-id"),
    resume_args=args_with_id("--resume"),
    conversations=conversations,
)
