"""Gemini CLI: Google's CLI, on Gemini models served by the workspace.

Reads ``~/.gemini/.env`` (model, base URL, key, bearer auth, headers),
``~/.gemini/settings.json`` (API-key auth, approval mode, no usage
statistics), ``~/.gemini/trustedFolders.json`` (it skips ``.env`` in an
untrusted folder) and the user policies in ``~/.gemini/policies/``.

Gemini reads its key only as ``GEMINI_API_KEY`` (the environment wins over
``.env``, and ``.env`` values are not expanded): through the app's gateway
``.env`` holds no key and every terminal carries the session's key under that
name (``key_env``). A direct config writes the token into ``.env``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lib.agents import files
from lib.agents.base import (
    CODING_AGENT_HEADER,
    CODING_AGENT_HEADER_VALUE,
    Agent,
    ConfigResult,
    ConfigState,
    Conversation,
    Loopback,
    ModelAccess,
    args_with_id,
    first_json_line,
    iso_time,
    model_base_url,
    modified_at,
    unconfigured,
)
from lib.agents.hooks import write_json_hooks
from lib.attention import install as attention
from lib.settings import PermissionMode, Settings

# settings.json ``general.defaultApprovalMode``. Gemini ignores "yolo" there
# (only its command-line flag turns it on), so "run everything" is a user
# policy that allows every tool, which is what the flag does.
APPROVAL_MODES = {PermissionMode.ASK: "default", PermissionMode.EDITS: "auto_edit", PermissionMode.ALL: "default"}
ALLOW_ALL_POLICY = (
    '# Written by Coda: "run everything without asking".\n'
    '[[rule]]\ntoolName = "*"\ndecision = "allow"\npriority = 100\n'
)
POLICY_FILE = Path(".gemini") / "policies" / "coda.toml"


API = "gemini"
KEY_ENV = "GEMINI_API_KEY"


def endpoint(settings: Settings) -> str | None:
    return model_base_url(settings, API)


def _write_policy(home: Path, mode: PermissionMode) -> None:
    path = home / POLICY_FILE
    if mode is PermissionMode.ALL:
        files.write_text(path, ALLOW_ALL_POLICY)
    else:
        path.unlink(missing_ok=True)


def write_config(home: Path, settings: Settings, access: ModelAccess) -> ConfigResult:
    """``~/.gemini/.env``, ``settings.json``, the trusted projects folder and the approval policy."""
    folder = home / ".gemini"
    settings_path = folder / "settings.json"
    ours = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"defaultApprovalMode": APPROVAL_MODES[settings.permission_mode]},
    }
    files.write_json(settings_path, files.deep_merge(files.read_json_object(settings_path), ours))
    write_attention_hooks(home, access)
    _write_policy(home, settings.permission_mode)
    # Trusting the projects folder trusts every project below it.
    trusted_path = folder / "trustedFolders.json"
    files.write_json(trusted_path, {**files.read_json_object(trusted_path), str(settings.projects_dir): "TRUST_FOLDER"})
    written = (settings_path, trusted_path)
    if isinstance(access, Loopback):
        base_url: str | None = access.api(API)
        key: dict[str, str] = {}
    else:
        base_url = endpoint(settings)
        missing = unconfigured("gemini", settings, access, base_url, written)
        if missing:
            return missing
        key = {KEY_ENV: str(access)}
    env_path = folder / ".env"
    text = files.update_env_file(
        env_path,
        {
            "GEMINI_MODEL": settings.gemini_model,
            "GOOGLE_GEMINI_BASE_URL": base_url,
            **key,
            "GEMINI_API_KEY_AUTH_MECHANISM": "bearer",
            "GEMINI_CLI_CUSTOM_HEADERS": f"{CODING_AGENT_HEADER}: {CODING_AGENT_HEADER_VALUE}",
        },
    )
    if not key:  # the key comes from the session's environment; an old token must not linger
        text = "".join(line + "\n" for line in text.splitlines()
                       if not re.match(rf"^\s*(?:export\s+)?{KEY_ENV}\s*=", line))
    files.write_text(env_path, text)
    return ConfigResult("gemini", ConfigState.OK, "", (env_path, *written))


# Gemini CLI's hooks that tell the app what the agent is doing (lib.attention.events); the
# Notification hook is its tool-permission dialog. Gemini runs hooks with ``bash -c``.
ATTENTION_EVENTS = ("SessionStart", "BeforeAgent", "Notification", "AfterTool", "AfterAgent", "SessionEnd")
ATTENTION_HOOK_NAME = "coda-attention"


def write_attention_hooks(home: Path, access: ModelAccess) -> None:
    """Our hooks in ``~/.gemini/settings.json``, named so they show as ours in Gemini's /hooks."""

    def group(event: str) -> dict[str, Any]:
        hook = {"type": "command", "name": ATTENTION_HOOK_NAME, "command": attention.command("gemini", event),
                "timeout": attention.TIMEOUT_S * 1000}
        return {"matcher": "*", "hooks": [hook]}

    write_json_hooks(home, home / ".gemini" / "settings.json", access, ATTENTION_EVENTS, group)


def trust(home: Path, folder: Path) -> None:
    """Gemini accepts a trusted parent, so only add the folder when no parent covers it."""
    path = home / ".gemini" / "trustedFolders.json"
    data = files.read_json_object(path)
    covered = any(
        level == "TRUST_FOLDER" and (folder == Path(p) or Path(p) in folder.parents) for p, level in data.items()
    )
    if not covered:
        files.write_json(path, {**data, str(folder): "TRUST_FOLDER"})



# ---------------------------------------------------------------- resume by id
# Gemini CLI 0.61 takes the id of a new conversation up front (``--session-id <uuid>``)
# and resumes one by id (``--resume <uuid>``). Conversations live in
# ``~/.gemini/tmp/<project slug>/chats/session-<time>-<id prefix>.jsonl`` (``.json``
# before); the slug's folder is in ``~/.gemini/tmp/<slug>/.project_root``, and the
# file's first line holds ``sessionId``, ``startTime`` and ``kind`` ("main").


def conversations(home: Path, folder: Path, since: float) -> list[Conversation]:
    """Main conversations of ``folder`` written since ``since``, oldest first."""
    found = []
    for marker in (home / ".gemini" / "tmp").glob("*/.project_root"):
        try:
            if marker.read_text().strip() != str(folder):
                continue
        except OSError:
            continue
        for path in (marker.parent / "chats").glob("session-*.json*"):
            mtime = modified_at(path)
            if mtime is None or mtime < since:
                continue
            head = first_json_line(path) or {}
            if not isinstance(head.get("sessionId"), str) or head.get("kind", "main") != "main":
                continue
            found.append(Conversation(head["sessionId"], iso_time(head.get("startTime"), mtime), mtime, str(path)))
    return sorted(found, key=lambda c: c.started_at)


AGENT = Agent(
    id="gemini",
    name="Gemini CLI",
    description="Google's coding agent, on Gemini models served by your workspace.",
    command=("gemini",),
    resume_command=("gemini", "--resume", "latest"),
    npm_package="@google/gemini-cli",
    npm_version="0.61.0",
    model_field="gemini_model",
    write_config=write_config,
    trust=trust,
    endpoint=endpoint,
    key_env=(KEY_ENV,),
    new_conversation_args=args_with_id("--session-id"),
    resume_args=args_with_id("--resume"),
    conversations=conversations,
)
