"""Codex: OpenAI's CLI, on GPT models over the Responses API.

Reads ``~/.codex/config.toml``: the model, a ``databricks`` provider
(``base_url``, where the bearer token comes from, headers), the approval
policy and sandbox, and its own trusted projects. It streams
``POST {base_url}/responses``.

Through the app's gateway the provider reads its key from the session's
environment (``env_key = "CODA_SESSION_KEY"``), so the file holds no secret.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
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
    first_json_line,
    iso_time,
    model_base_url,
    modified_at,
    unconfigured,
)
from lib.attention import install as attention
from lib.settings import PermissionMode, Settings

# (approval_policy, sandbox_mode) per mode. Codex 0.171 knows only
# "on-request" and "never" ("untrusted" makes it exit): in "ask" mode commands
# run in a read-only sandbox and Codex asks before anything that needs more
# (an edit, a command asking for escalation).
MODES = {
    PermissionMode.ASK: ("on-request", "read-only"),
    PermissionMode.EDITS: ("on-request", "workspace-write"),
    PermissionMode.ALL: ("never", "danger-full-access"),
}


API = "openai"
KEY_INSTRUCTIONS = (f"Start Codex in a Coda terminal: its {SESSION_KEY_ENV} authenticates model calls through "
                    "the app.")


def endpoint(settings: Settings) -> str | None:
    return model_base_url(settings, API)


def write_config(home: Path, settings: Settings, access: ModelAccess) -> ConfigResult:
    """``~/.codex/config.toml`` with a ``databricks`` Responses-API provider.

    Through the gateway the key is the session's (``env_key``: every Coda
    terminal has it; Codex refuses to start where it is unset). A direct
    config puts the token into ``experimental_bearer_token``, which Codex
    prefers when present, since a terminal's environment must not carry a
    workspace token. Codex keeps its own entries (trusted projects, notices)
    in the same file, so it is parsed, updated and written whole.
    """
    if isinstance(access, Loopback):
        base_url: str | None = access.api(API)
        auth = {"env_key": SESSION_KEY_ENV, "env_key_instructions": KEY_INSTRUCTIONS}
    else:
        base_url = endpoint(settings)
        missing = unconfigured("codex", settings, access, base_url)
        if missing:
            return missing
        auth = {"experimental_bearer_token": str(access)}
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
            **auth,
            "http_headers": dict(CODING_AGENT_HEADERS),
        },
    }
    top = {"model": settings.codex_model, "model_provider": PROVIDER_ID,
           "approval_policy": approval, "sandbox_mode": sandbox}
    # Top-level keys must come before any table in TOML: put ours first.
    ordered = {**top, **{k: v for k, v in merged.items() if k not in top}}
    files.write_toml(path, ordered)
    write_attention_hooks(home, access)
    return ConfigResult("codex", ConfigState.OK, "", (path,))


# Codex's hooks that tell the app what the agent is doing (lib.attention.events), in
# ``~/.codex/hooks.json``. Codex 0.171 runs a user's command hook only once it is trusted:
# otherwise every start opens a "Hooks need review" dialog. Trust is recorded per hook in
# config.toml as ``[hooks.state."<hooks.json path>:<event>:<group>:<handler>"] trusted_hash``,
# the hash of the hook itself, which the app computes as Codex does. ``notify`` (turn
# complete) is set too unless the user has a notify program of their own.
ATTENTION_EVENTS = ("SessionStart", "UserPromptSubmit", "PermissionRequest", "PostToolUse", "Stop")


def write_attention_hooks(home: Path, access: ModelAccess) -> None:
    """Our hooks in ``~/.codex/hooks.json`` (the user's kept), their trust and ``notify`` in
    ``config.toml``; all of it removed when the app cannot be reached over loopback."""
    config_path = home / ".codex" / "config.toml"
    hooks_path = home / ".codex" / "hooks.json"
    config = files.read_toml(config_path)
    if config is None:
        return  # unreadable: leave the user's file alone
    hooks_file = files.read_json_object(hooks_path)
    before = hooks_file.get("hooks")
    ours: dict[str, list[dict[str, Any]]] = {}
    if isinstance(access, Loopback):
        attention.install_script(home)
        ours = {event: [{"hooks": [{"type": "command", "command": attention.command("codex", event),
                                    "timeout": attention.TIMEOUT_S}]}] for event in ATTENTION_EVENTS}
    hooks = attention.merge_hooks(before, ours)
    table = config.get("hooks") if isinstance(config.get("hooks"), dict) else {}
    state = dict(table.get("state")) if isinstance(table.get("state"), dict) else {}
    for event, g, h in attention.positions(before):
        state.pop(f"{hooks_path}:{attention.snake_case(event)}:{g}:{h}", None)
    for event, g, h in attention.positions(hooks):
        group = hooks[event][g]
        key = f"{hooks_path}:{attention.snake_case(event)}:{g}:{h}"
        trusted = attention.codex_trust_hash(attention.snake_case(event), group, group["hooks"][h])
        state[key] = {**(state.get(key) if isinstance(state.get(key), dict) else {}), "trusted_hash": trusted}
    updated = dict(config)
    rest = {k: v for k, v in table.items() if k != "state"}
    if state or rest:
        updated["hooks"] = {**rest, **({"state": state} if state else {})}
    else:
        updated.pop("hooks", None)
    if isinstance(access, Loopback) and (config.get("notify") is None or attention.is_ours(config.get("notify"))):
        updated["notify"] = attention.argv(home, "codex", "notify")
    elif attention.is_ours(config.get("notify")):
        updated.pop("notify", None)
    if hooks != before:
        if hooks or set(hooks_file) - {"hooks"}:
            files.write_json(hooks_path, {**hooks_file, "hooks": hooks})
        else:
            hooks_path.unlink(missing_ok=True)
    if updated != config:
        files.write_toml(config_path, updated)


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



# ---------------------------------------------------------------- resume by id
# Codex 0.171 picks its own ids (``codex resume <id>`` continues one). Each conversation
# is a "rollout" file, ``~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl``,
# written from the first message on; its first line (``session_meta``) holds the id,
# the working folder and the start time (when the TUI started, not the first message).


def conversations(home: Path, folder: Path, since: float) -> list[Conversation]:
    """Rollouts of ``folder`` written since ``since``, oldest first."""
    root = home / ".codex" / "sessions"
    day, last = date.fromtimestamp(since) - timedelta(days=1), date.fromtimestamp(time.time()) + timedelta(days=1)
    found = []
    while day <= last:  # the folders are named by date (local or UTC): one day either side
        for path in (root / f"{day.year:04d}" / f"{day.month:02d}" / f"{day.day:02d}").glob("rollout-*.jsonl"):
            mtime = modified_at(path)
            if mtime is None or mtime < since:
                continue
            meta = first_json_line(path) or {}
            payload = meta.get("payload") if isinstance(meta.get("payload"), dict) else {}
            if meta.get("type") != "session_meta" or not isinstance(payload.get("id"), str):
                continue
            if payload.get("cwd") != str(folder):
                continue
            found.append(Conversation(payload["id"], iso_time(payload.get("timestamp"), mtime), mtime, str(path)))
        day += timedelta(days=1)
    return sorted(found, key=lambda c: c.started_at)


AGENT = Agent(
    id="codex",
    name="Codex",
    description="OpenAI's coding agent, on GPT models over the Responses API.",
    # Without --no-daemon the TUI hands its conversation to a shared app-server daemon that
    # outlives the session (and the app) and keeps the environment, hence the session key,
    # of the session that started it: another session's, or a dead app process's, calls are
    # then refused by the gateway. With it the conversation runs in the session's own process.
    command=("codex", "--no-daemon"),
    resume_command=("codex", "--no-daemon", "resume", "--last"),
    npm_package="@openai/codex",
    npm_version="0.171.0",
    model_field="codex_model",
    write_config=write_config,
    trust=trust,
    endpoint=endpoint,
    resume_args=args_with_id("resume"),
    conversations=conversations,
)
