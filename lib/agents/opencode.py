"""OpenCode: the open-source CLI, on any chat-completions model endpoint.

Reads ``~/.config/opencode/opencode.json``: a provider using the bundled
``@ai-sdk/openai-compatible`` package (no download) pointed at the serving
endpoints' ``/chat/completions``, its model, the ``small_model`` for titles,
and the ``permission`` rules.

Through the app's gateway the provider's ``apiKey`` is ``{env:CODA_SESSION_KEY}``
(OpenCode substitutes it from the session's environment), so the file holds
no secret; ``includeUsage`` makes streamed answers report their tokens.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from lib.agents import files
from lib.agents.base import (
    CODING_AGENT_HEADERS,
    PROVIDER_ID,
    SESSION_KEY_ENV,
    Agent,
    ConfigResult,
    ConfigState,
    Conversation,
    Loopback,
    ModelAccess,
    args_with_id,
    model_base_url,
    unconfigured,
)
from lib.attention import install as attention
from lib.settings import PermissionMode, Settings

# OpenCode runs commands without asking by default: say what it may do.
PERMISSIONS: dict[PermissionMode, Any] = {
    PermissionMode.ASK: {"edit": "ask", "bash": "ask"},
    PermissionMode.EDITS: {"edit": "allow", "bash": "ask"},
    PermissionMode.ALL: "allow",
}


API = "chat"


def endpoint(settings: Settings) -> str | None:
    """Always the serving endpoints: the AI Gateway has no chat-completions route for it."""
    return model_base_url(settings, API)


def write_config(home: Path, settings: Settings, access: ModelAccess) -> ConfigResult:
    """``~/.config/opencode/opencode.json`` with an OpenAI-compatible Databricks provider."""
    if isinstance(access, Loopback):
        options = {"baseURL": access.api(API), "apiKey": f"{{env:{SESSION_KEY_ENV}}}",
                   "headers": dict(CODING_AGENT_HEADERS), "includeUsage": True}
    else:
        base_url = endpoint(settings)
        missing = unconfigured("opencode", settings, access, base_url)
        if missing:
            return missing
        options = {"baseURL": base_url, "apiKey": access, "headers": dict(CODING_AGENT_HEADERS)}
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
                    "options": options,
                    "models": {model: {"name": model}},
                },
            },
        }
    )
    files.write_json(path, existing)
    write_attention_plugin(home, access)
    return ConfigResult("opencode", ConfigState.OK, "", (path,))


# OpenCode has no command hooks; a plugin in its config folder gets every event
# (lib/attention/hooks/opencode-plugin.js). OpenCode loads ``plugin/*.js`` from
# ``~/.config/opencode`` and, whenever plugins exist, first waits for its own npm install
# of ``@opencode-ai/plugin`` into that folder: once per HOME, seconds with npm reachable.
# Unreachable, npm's retries made every start wait about a minute: the folder's ``.npmrc``
# gets ``fetch-retries=0`` and ``fetch-timeout`` (unless the user set them), so an install
# that cannot work fails at once and OpenCode starts as fast as without the plugin.
ATTENTION_PLUGIN = Path(".config") / "opencode" / "plugin" / "coda-attention.js"
NPMRC = Path(".config") / "opencode" / ".npmrc"
NPMRC_NOTE = "# Coda: OpenCode waits for this folder's npm install at start; fail fast when npm is unreachable."
NPMRC_FAIL_FAST = {"fetch-retries": "0", "fetch-timeout": "5000"}


def write_attention_plugin(home: Path, access: ModelAccess) -> None:
    """The attention plugin, when the app can be reached over loopback; removed otherwise."""
    path = home / ATTENTION_PLUGIN
    _npmrc_fail_fast(home / NPMRC, isinstance(access, Loopback))
    if not isinstance(access, Loopback):
        path.unlink(missing_ok=True)
        return
    text = attention.plugin_text()
    try:
        if path.read_bytes() == text:
            return
    except OSError:
        pass
    files.write_text(path, text.decode())


def _npmrc_fail_fast(path: Path, on: bool) -> None:
    """Our fail-fast lines in OpenCode's config folder ``.npmrc``: added (keys the user set win) or removed."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    except (OSError, UnicodeDecodeError):
        return  # unreadable: leave the user's file alone
    ours = [NPMRC_NOTE, *(f"{k}={v}" for k, v in NPMRC_FAIL_FAST.items())]
    theirs = [line for line in lines if line not in ours]
    taken = {line.split("=", 1)[0].strip() for line in theirs if "=" in line}
    wanted = theirs + ([NPMRC_NOTE, *(f"{k}={v}" for k, v in NPMRC_FAIL_FAST.items() if k not in taken)]
                       if on else [])
    if wanted == lines:
        return
    if wanted:
        files.write_text(path, "\n".join(wanted) + "\n")
    else:
        path.unlink(missing_ok=True)



# ---------------------------------------------------------------- resume by id
# OpenCode 1.18 picks its own ids (``opencode --session <id>`` continues one) and keeps
# every conversation in one SQLite database, ``~/.local/share/opencode/opencode.db``:
# table ``session`` (``id``, ``directory``, ``parent_id`` for sub-agents, times in ms).
# A conversation is created with its first message, not when the TUI starts.
DATABASE = Path(".local") / "share" / "opencode" / "opencode.db"


def conversations(home: Path, folder: Path, since: float) -> list[Conversation]:
    """Top-level conversations of ``folder`` written since ``since``, oldest first (read-only)."""
    path = home / DATABASE
    if not path.is_file():
        return []
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=2)
        try:
            rows = db.execute(
                "SELECT id, time_created, time_updated FROM session WHERE directory = ? AND parent_id IS NULL "
                "AND time_updated >= ? ORDER BY time_created", (str(folder), int(since * 1000))).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    return [Conversation(str(i), created / 1000, updated / 1000) for i, created, updated in rows]


AGENT = Agent(
    id="opencode",
    name="OpenCode",
    description="Open-source coding agent, on any chat-completions model endpoint.",
    command=("opencode",),
    resume_command=("opencode", "--continue"),
    npm_package="opencode-ai",
    npm_version="1.18.33",
    model_field="opencode_model",
    write_config=write_config,
    endpoint=endpoint,
    resume_args=args_with_id("--session"),
    conversations=conversations,
)
