"""Config writers: the files each agent CLI reads to reach Databricks models.

Pure functions of explicit inputs (home, settings, token): the boot setup,
the sidebar's Save and the tests all call the same code, and the golden tests
pin the exact bytes. Terminals get ``DATABRICKS_*`` stripped from their
environment, so these files are the only way a CLI (or the detached git sync
hook, via ``~/.databrickscfg``) learns the workspace and the token.

Rules every writer follows: atomic replace (a CLI starting mid-write never
sees half a file), mode 0600 for anything holding the token, and keys the
user or the CLI itself added to the same file survive. With no workspace host
(or no token) an agent is reported "not configured" and its token-bearing
files are left alone rather than written half-broken.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lib import statefile
from lib.agents import AGENTS, Agent, get_agent
from lib.settings import Settings

CODING_AGENT_HEADER = "x-databricks-use-coding-agent-mode"
CODING_AGENT_HEADER_VALUE = "true"
OPENCODE_PROVIDER_ID = "databricks"
CODEX_PROVIDER_ID = "databricks"
# Codex refuses to start when ``env_key`` names an unset variable, and the
# terminal's environment must not carry secrets; the token goes into
# ``experimental_bearer_token`` instead, which Codex prefers when present.
PRIVATE_MODE = 0o600

NO_HOST = "not configured: no workspace host"
NO_TOKEN = "not configured: no token"


@dataclass(frozen=True)
class ConfigResult:
    """What writing one agent's (or one tool's) config did.

    ``status`` is "ok", "not configured" or "none needed"; ``reason`` says why
    in words the launcher card and the setup page show as is.
    """

    target: str
    status: str
    reason: str = ""
    files: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "none needed")


# ---------------------------------------------------------------- endpoints


def gateway_urls(gateway_host: str) -> dict[str, str]:
    """Base URLs under an AI gateway host, per wire protocol."""
    return {
        "anthropic": f"{gateway_host}/anthropic",
        "openai": f"{gateway_host}/openai/v1",
        "gemini": f"{gateway_host}/gemini",
    }


def serving_urls(host: str) -> dict[str, str]:
    """Base URLs under the workspace's serving endpoints, per wire protocol."""
    return {
        "anthropic": f"{host}/serving-endpoints/anthropic",
        "openai": f"{host}/serving-endpoints",
        "gemini": f"{host}/serving-endpoints/google",
    }


_PROTOCOL = {"claude": "anthropic", "codex": "openai", "gemini": "gemini"}


def endpoint_for(agent_id: str, settings: Settings) -> str | None:
    """The base URL ``agent_id`` will call, or ``None`` when nothing is set up.

    The gateway, when configured, serves Claude, Codex and Gemini; OpenCode's
    OpenAI-compatible provider always uses the serving endpoints'
    ``/chat/completions``.
    """
    if agent_id == "opencode":
        return f"{settings.databricks_host}/serving-endpoints" if settings.databricks_host else None
    protocol = _PROTOCOL.get(agent_id)
    if protocol is None:
        return None
    if settings.gateway_host:
        return gateway_urls(settings.gateway_host)[protocol]
    if settings.databricks_host:
        return serving_urls(settings.databricks_host)[protocol]
    return None


def model_for(agent: Agent, settings: Settings) -> str | None:
    """The model endpoint name the agent is set to use."""
    return getattr(settings, agent.model_field) if agent.model_field else None


# ---------------------------------------------------------------- file helpers


def _read_json_object(path: Path) -> dict[str, Any]:
    """An existing JSON object to merge into; anything unreadable starts empty."""
    data = statefile.read_json(path, default={})
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    statefile.atomic_write(path, (json.dumps(data, indent=2) + "\n").encode(), PRIVATE_MODE)


def _deep_merge(base: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``ours`` laid over it; nested objects merge key by key."""
    merged = dict(base)
    for key, value in ours.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _update_env_file(path: Path, values: dict[str, str]) -> str:
    """``KEY=value`` lines: ours replaced in place or appended, the rest kept."""
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, OSError, UnicodeDecodeError):
        lines = []
    pending = dict(values)
    out: list[str] = []
    for line in lines:
        match = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if match and match.group(1) in values:
            key = match.group(1)
            if key in pending:
                out.append(f"{key}={pending.pop(key)}")
            continue  # a duplicate of one of our keys: drop it
        out.append(line)
    out.extend(f"{key}={value}" for key, value in pending.items())
    return "\n".join(out) + "\n"


def _update_ini_default(text: str, values: dict[str, str], drop: tuple[str, ...] = ()) -> str:
    """Set keys in the ``[DEFAULT]`` section of an INI text, keeping every other line.

    ``configparser`` would lose comments and reorder profiles the user wrote
    by hand, so this edits lines.
    """
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.strip().upper() == "[DEFAULT]"), None)
    if start is None:
        head = ["[DEFAULT]", *(f"{k} = {v}" for k, v in values.items())]
        rest = lines if lines else []
        return "\n".join(head + ([""] + rest if rest else [])) + "\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("[")), len(lines))
    pending = dict(values)
    section: list[str] = []
    for line in lines[start + 1 : end]:
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*[=:]", line)
        key = match.group(1).lower() if match else None
        if key in values:
            if key in pending:
                section.append(f"{key} = {pending.pop(key)}")
            continue
        if key in drop:
            continue
        section.append(line)
    # New keys go right after the header, before any blank separator line.
    section = [f"{k} = {v}" for k, v in pending.items()] + section
    return "\n".join(lines[: start + 1] + section + lines[end:]) + "\n"


# ---------------------------------------------------------------- TOML writing


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_emit(table: dict[str, Any], path: list[str], out: list[str]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, dict)]
    arrays = [(k, v) for k, v in table.items() if _is_table_array(v)]
    if path and (scalars or not tables):
        out.extend(["", "[" + ".".join(_toml_key(p) for p in path) + "]"])
    out.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars)
    for key, value in tables:
        _toml_emit(value, path + [key], out)
    for key, items in arrays:
        for item in items:
            out.extend(["", "[[" + ".".join(_toml_key(p) for p in path + [key]) + "]]"])
            out.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items())


def toml_dumps(data: dict[str, Any]) -> str:
    """Serialize what ``tomllib.loads`` returns back to TOML text.

    Python reads TOML but cannot write it, and Codex keeps its own entries
    (trusted projects, notices) in the same ``config.toml``; to change our
    keys and keep those we parse, update and write the whole document.
    """
    out: list[str] = []
    _toml_emit(data, [], out)
    return "\n".join(out).lstrip("\n") + "\n"


# ---------------------------------------------------------------- writers


def write_claude(home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """``~/.claude/settings.json`` (env block) and ``~/.claude.json`` (onboarding done)."""
    onboarding = home / ".claude.json"
    _write_json(onboarding, {**_read_json_object(onboarding), "hasCompletedOnboarding": True})
    base_url = endpoint_for("claude", settings)
    if base_url is None:
        return ConfigResult("claude", "not configured", NO_HOST, (onboarding,))
    if not token:
        return ConfigResult("claude", "not configured", NO_TOKEN, (onboarding,))
    path = home / ".claude" / "settings.json"
    existing = _read_json_object(path)
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
    _write_json(path, existing)
    return ConfigResult("claude", "ok", "", (path, onboarding))


def write_codex(home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """``~/.codex/config.toml`` with a ``databricks`` Responses-API provider."""
    base_url = endpoint_for("codex", settings)
    if base_url is None:
        return ConfigResult("codex", "not configured", NO_HOST)
    if not token:
        return ConfigResult("codex", "not configured", NO_TOKEN)
    path = home / ".codex" / "config.toml"
    try:
        existing = tomllib.loads(path.read_text())
    except (FileNotFoundError, OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        existing = {}
    providers = existing.get("model_providers") if isinstance(existing.get("model_providers"), dict) else {}
    ours = {
        "model": settings.codex_model,
        "model_provider": CODEX_PROVIDER_ID,
        "model_providers": {
            **providers,
            CODEX_PROVIDER_ID: {
                "name": "Databricks",
                "base_url": base_url,
                "wire_api": "responses",
                "experimental_bearer_token": token,
                "http_headers": {CODING_AGENT_HEADER: CODING_AGENT_HEADER_VALUE},
            },
        },
        "analytics": {"enabled": False},
        "otel": {"metrics_exporter": "none"},
        "features": {"plugins": False},
    }
    merged = _deep_merge(existing, {k: v for k, v in ours.items() if k != "model_providers"})
    merged["model_providers"] = ours["model_providers"]
    # Top-level keys must come before any table in TOML: put ours first.
    ordered = {"model": merged.pop("model"), "model_provider": merged.pop("model_provider"), **merged}
    statefile.atomic_write(path, toml_dumps(ordered).encode(), PRIVATE_MODE)
    return ConfigResult("codex", "ok", "", (path,))


def write_gemini(home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """``~/.gemini/.env``, ``settings.json`` (API-key auth) and the trusted projects folder."""
    folder = home / ".gemini"
    settings_path = folder / "settings.json"
    ours = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
    }
    _write_json(settings_path, _deep_merge(_read_json_object(settings_path), ours))
    # Gemini skips ~/.gemini/.env in an untrusted folder; trusting the
    # projects folder trusts every project below it.
    trusted_path = folder / "trustedFolders.json"
    trusted = {**_read_json_object(trusted_path), str(settings.projects_dir): "TRUST_FOLDER"}
    _write_json(trusted_path, trusted)
    written = (settings_path, trusted_path)
    base_url = endpoint_for("gemini", settings)
    if base_url is None:
        return ConfigResult("gemini", "not configured", NO_HOST, written)
    if not token:
        return ConfigResult("gemini", "not configured", NO_TOKEN, written)
    env_path = folder / ".env"
    text = _update_env_file(
        env_path,
        {
            "GEMINI_MODEL": settings.gemini_model,
            "GOOGLE_GEMINI_BASE_URL": base_url,
            "GEMINI_API_KEY": token,
            "GEMINI_API_KEY_AUTH_MECHANISM": "bearer",
            "GEMINI_CLI_CUSTOM_HEADERS": f"{CODING_AGENT_HEADER}: {CODING_AGENT_HEADER_VALUE}",
        },
    )
    statefile.atomic_write(env_path, text.encode(), PRIVATE_MODE)
    return ConfigResult("gemini", "ok", "", (env_path, *written))


def write_opencode(home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """``~/.config/opencode/opencode.json`` with an OpenAI-compatible Databricks provider."""
    base_url = endpoint_for("opencode", settings)
    if base_url is None:
        return ConfigResult("opencode", "not configured", NO_HOST)
    if not token:
        return ConfigResult("opencode", "not configured", NO_TOKEN)
    path = home / ".config" / "opencode" / "opencode.json"
    existing = _read_json_object(path)
    providers = existing.get("provider") if isinstance(existing.get("provider"), dict) else {}
    model = settings.opencode_model
    existing.setdefault("$schema", "https://opencode.ai/config.json")
    existing.update(
        {
            "autoupdate": False,
            "share": "disabled",
            "model": f"{OPENCODE_PROVIDER_ID}/{model}",
            # Without small_model, title requests go to a model from
            # OpenCode's own catalogue, which the workspace does not serve.
            "small_model": f"{OPENCODE_PROVIDER_ID}/{model}",
            "provider": {
                **providers,
                OPENCODE_PROVIDER_ID: {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Databricks",
                    "options": {
                        "baseURL": base_url,
                        "apiKey": token,
                        "headers": {CODING_AGENT_HEADER: CODING_AGENT_HEADER_VALUE},
                    },
                    "models": {model: {"name": model}},
                },
            },
        }
    )
    _write_json(path, existing)
    return ConfigResult("opencode", "ok", "", (path,))


def write_databrickscfg(home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """``~/.databrickscfg`` ``[DEFAULT]`` host + token, for the git sync hook and databricks tools."""
    if not settings.databricks_host:
        return ConfigResult("databrickscfg", "not configured", NO_HOST)
    if not token:
        return ConfigResult("databrickscfg", "not configured", NO_TOKEN)
    path = home / ".databrickscfg"
    try:
        text = path.read_text()
    except (FileNotFoundError, OSError, UnicodeDecodeError):
        text = ""
    # Another auth method left in [DEFAULT] would make the SDK refuse the profile.
    drop = ("auth_type", "client_id", "client_secret", "username", "password", "azure_client_id",
            "azure_client_secret", "azure_tenant_id", "google_service_account")
    new = _update_ini_default(text, {"host": settings.databricks_host, "token": token}, drop)
    statefile.atomic_write(path, new.encode(), PRIVATE_MODE)
    return ConfigResult("databrickscfg", "ok", "", (path,))


def trust_project(home: Path, folder: Path) -> None:
    """Mark ``folder`` trusted for Claude Code, Codex and Gemini before a session starts there.

    Claude and Codex open with a "trust this folder?" dialog (Claude's
    default answer is "No, exit"), and only an entry for the exact folder
    counts, not a parent. Choosing a project in the launcher is the user's
    trust decision, so it is recorded where each CLI looks for it; other
    entries in those files are kept.
    """
    folder = folder.resolve()
    key = str(folder)
    claude_path = home / ".claude.json"
    claude = _read_json_object(claude_path)
    projects = claude.get("projects") if isinstance(claude.get("projects"), dict) else {}
    entry = projects.get(key) if isinstance(projects.get(key), dict) else {}
    if entry.get("hasTrustDialogAccepted") is not True:
        claude["projects"] = {**projects, key: {**entry, "hasTrustDialogAccepted": True}}
        _write_json(claude_path, claude)
    codex_path = home / ".codex" / "config.toml"
    try:
        codex = tomllib.loads(codex_path.read_text())
    except FileNotFoundError:
        codex = {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        codex = None  # unreadable: leave the user's file alone
    if codex is not None:
        trusted = codex.get("projects") if isinstance(codex.get("projects"), dict) else {}
        if (trusted.get(key) or {}).get("trust_level") != "trusted":
            codex["projects"] = {**trusted, key: {**(trusted.get(key) or {}), "trust_level": "trusted"}}
            statefile.atomic_write(codex_path, toml_dumps(codex).encode(), PRIVATE_MODE)
    gemini_path = home / ".gemini" / "trustedFolders.json"
    gemini = _read_json_object(gemini_path)
    covered = any(
        level == "TRUST_FOLDER" and (folder == Path(p) or Path(p) in folder.parents) for p, level in gemini.items()
    )
    if not covered:
        _write_json(gemini_path, {**gemini, key: "TRUST_FOLDER"})


# Adding an agent that reads config files = one writer here, keyed by its id.
WRITERS: dict[str, Callable[[Path, Settings, str | None], ConfigResult]] = {
    "claude": write_claude,
    "codex": write_codex,
    "gemini": write_gemini,
    "opencode": write_opencode,
}


def write_agent_config(agent_id: str, home: Path, settings: Settings, token: str | None) -> ConfigResult:
    """Write one agent's files; agents without config (the shell) need none."""
    writer = WRITERS.get(agent_id)
    if writer is None:
        if get_agent(agent_id) is None:
            raise KeyError(f"unknown agent '{agent_id}'")
        return ConfigResult(agent_id, "none needed")
    return writer(home, settings, token)


def write_all(home: Path, settings: Settings, token: str | None) -> list[ConfigResult]:
    """Every agent's files plus ``~/.databrickscfg``, one result each.

    A writer that fails (disk full, a folder where a file should be) becomes
    a "failed" result so one broken file does not stop the others.
    """
    results: list[ConfigResult] = []
    targets: list[tuple[str, Callable[[], ConfigResult]]] = [
        (a.id, lambda a=a: write_agent_config(a.id, home, settings, token)) for a in AGENTS
    ]
    targets.append(("databrickscfg", lambda: write_databrickscfg(home, settings, token)))
    for target, write in targets:
        try:
            results.append(write())
        except OSError as exc:
            results.append(ConfigResult(target, "failed", f"could not write: {exc.strerror or exc}"))
    return results


def config_status(agent_id: str, settings: Settings, token: str | None) -> str | None:
    """Why ``agent_id`` cannot be configured right now, or ``None`` when it can."""
    agent = get_agent(agent_id)
    if agent is None or not agent.needs_workspace:
        return None
    if endpoint_for(agent_id, settings) is None:
        return NO_HOST
    if not token:
        return NO_TOKEN
    return None
