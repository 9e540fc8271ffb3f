"""One typed settings object: deployment environment, then the user's overrides.

Precedence (later wins): built-in defaults < environment (``app.yaml``) <
overrides saved from the sidebar in ``~/.coda/settings.json``. Only the keys
in ``EDITABLE`` can be overridden; "reset to deployment defaults" deletes the
overrides file. Secrets (the token) never live here: see ``lib.workspace.tokens``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from lib import homefiles, statefile

DEFAULT_ANTHROPIC_MODEL = "databricks-claude-opus-4-6"
DEFAULT_CODEX_MODEL = "databricks-gpt-5-2"
DEFAULT_GEMINI_MODEL = "databricks-gemini-3-1-pro"
DEFAULT_OPENCODE_MODEL = "databricks-claude-opus-4-6"

THEMES = ("auto", "light", "dark")


class PermissionMode(StrEnum):
    """How much an agent may do before it asks: one choice for every agent.

    Claude Code 2.1 otherwise starts in an "auto" mode whose safety check
    runs on Anthropic's side and is not available through Databricks, and
    OpenCode runs commands without asking by default: the app sets each
    agent's mode explicitly instead.
    """

    ASK = "ask"
    EDITS = "edits"
    ALL = "all"

    @property
    def label(self) -> str:
        return PERMISSION_LABELS[self]


PERMISSION_LABELS = {
    PermissionMode.ASK: "Ask before running commands and editing files",
    PermissionMode.EDITS: "Edit files freely, ask before commands",
    PermissionMode.ALL: "Run everything without asking",
}
PERMISSION_WARNING = (
    "Agents will run any command and change any file without asking, with this app's access to your "
    "workspace and its files. Use it only for work you can throw away."
)
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")
_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_HOST_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$")
_IPV6_RE = re.compile(r"^[0-9a-f:.]{2,45}$")
MAX_DAILY_TOKENS = 1_000_000_000
# The daily token budget per session: read by the gateway at every call, so a change applies at once.
BUDGET_FIELDS = frozenset({"session_daily_tokens", "budget_refuse"})


class SettingsError(ValueError):
    """A value a user typed cannot be used; the message says why, in words."""


def normalize_host(value: str | None) -> str | None:
    """``adb-1.azuredatabricks.net`` -> ``https://adb-1.azuredatabricks.net``.

    The Apps platform sometimes injects ``DATABRICKS_HOST`` without a scheme;
    everything downstream wants a full URL without a trailing slash.
    """
    if value is None:
        return None
    value = value.strip().rstrip("/")
    if not value:
        return None
    if not re.match(r"^https?://", value):
        value = "https://" + value
    return value


def _validate_url(value: str) -> str:
    host = normalize_host(value)
    if host is None:
        return ""
    if not re.match(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~/-]*)?$", host):
        raise SettingsError(f"'{value}' is not a valid host URL (expected e.g. https://example.cloud.databricks.com)")
    return host


def host_name(value: str | None) -> str | None:
    """The name in a ``Host`` header value, lower case, without the port; ``None`` when malformed.

    ``Example.COM:8000`` -> ``example.com``, ``[::1]:8000`` -> ``::1``, ``localhost.`` -> ``localhost``.
    Only letters, digits, dots and dashes (or an IPv6 literal in brackets) are names.
    """
    text = (value or "").strip().lower()
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name if _IPV6_RE.match(name) and ":" in name else None
    name, colon, port = text.partition(":")
    if colon and not port.isdigit():
        return None
    name = name[:-1] if name.endswith(".") else name
    return name if len(name) <= 253 and _HOST_NAME_RE.match(name) else None


def parse_host_names(value: str) -> tuple[str, ...]:
    """``CODA_ALLOWED_HOSTS``: names separated by commas or spaces (a port, if given, is ignored)."""
    names: list[str] = []
    for item in re.split(r"[,\s]+", value.strip()):
        if not item:
            continue
        name = host_name(item)
        if name is None and ":" in item and not item.startswith("["):
            name = host_name(f"[{item}]")  # a bare IPv6 address
        if name is None:
            raise SettingsError(f"'{item}' is not a host name (expected e.g. coda.example.com or 192.168.1.5)")
        if name not in names:
            names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class Settings:
    home: Path
    databricks_host: str | None = None
    gateway_host: str | None = None
    anthropic_model: str = DEFAULT_ANTHROPIC_MODEL
    codex_model: str = DEFAULT_CODEX_MODEL
    gemini_model: str = DEFAULT_GEMINI_MODEL
    opencode_model: str = DEFAULT_OPENCODE_MODEL
    default_project: str = ""
    session_cap: int = 5
    idle_timeout_s: int = 24 * 3600
    scrollback_bytes: int = 4 * 1024 * 1024
    upload_max_bytes: int = 100 * 1024 * 1024
    # Memory a new session must leave free in the container (lib.capacity); 0 turns the check off.
    memory_floor_mb: int = 512
    font_size: int = 14
    theme: str = "auto"
    permission_mode: PermissionMode = PermissionMode.ASK
    # "Resume my sessions when the app starts": sessions ended by a restart start again by themselves.
    resume_on_start: bool = False
    # Terminal: a selection is copied to the clipboard as soon as it is made (as in many desktop terminals).
    copy_on_select: bool = False
    # Needs attention (lib.attention): a desktop notification, and a sound, when a session in the
    # background starts waiting for the user.
    notify_desktop: bool = False
    notify_sound: bool = False
    # Model tokens one session may use per calendar day through the app's gateway (lib.gateway.usage.Budget);
    # 0 means no budget. Past 80 % the Sessions page warns; past 100 % it says "over budget", and with
    # ``budget_refuse`` the gateway turns the session's next calls away (read per call: no restart needed).
    session_daily_tokens: int = 0
    budget_refuse: bool = False
    # Host names the app answers to besides the loopback names and its bind
    # address (DNS-rebinding protection, ``lib.access``); deployment only, never
    # from the sidebar.
    allowed_hosts: tuple[str, ...] = ()

    @property
    def projects_dir(self) -> Path:
        return homefiles.projects_dir(self.home)

    @property
    def state_dir(self) -> Path:
        return homefiles.coda_dir(self.home)


# Environment variable -> field. Values are parsed by the field's type.
ENV_VARS: dict[str, str] = {
    "DATABRICKS_HOST": "databricks_host",
    "DATABRICKS_GATEWAY_HOST": "gateway_host",
    "ANTHROPIC_MODEL": "anthropic_model",
    "CODEX_MODEL": "codex_model",
    "GEMINI_MODEL": "gemini_model",
    "OPENCODE_MODEL": "opencode_model",
    "CODA_DEFAULT_PROJECT": "default_project",
    "CODA_MAX_SESSIONS": "session_cap",
    "CODA_IDLE_TIMEOUT_SECONDS": "idle_timeout_s",
    "CODA_SCROLLBACK_BYTES": "scrollback_bytes",
    "CODA_MAX_UPLOAD_BYTES": "upload_max_bytes",
    "CODA_MEMORY_FLOOR_MB": "memory_floor_mb",
    "CODA_PERMISSION_MODE": "permission_mode",
    "CODA_ALLOWED_HOSTS": "allowed_hosts",
    "CODA_RESUME_ON_START": "resume_on_start",
    "CODA_SESSION_DAILY_TOKENS": "session_daily_tokens",
    "CODA_BUDGET_REFUSE": "budget_refuse",
}

# Fields the sidebar may change, persisted in ~/.coda/settings.json.
EDITABLE = (
    "gateway_host",
    "anthropic_model",
    "codex_model",
    "gemini_model",
    "opencode_model",
    "default_project",
    "session_cap",
    "font_size",
    "theme",
    "permission_mode",
    "resume_on_start",
    "copy_on_select",
    "notify_desktop",
    "notify_sound",
    "session_daily_tokens",
    "budget_refuse",
)

_INT_BOUNDS = {
    "session_cap": (1, 50),
    "idle_timeout_s": (60, 30 * 24 * 3600),
    "scrollback_bytes": (64 * 1024, 256 * 1024 * 1024),
    "upload_max_bytes": (1024, 10 * 1024 * 1024 * 1024),
    "memory_floor_mb": (0, 16 * 1024 * 1024),
    "font_size": (8, 32),
    # A billion tokens a day is already far beyond what one session can spend; more is a typo.
    "session_daily_tokens": (0, MAX_DAILY_TOKENS),
}
_BOOLS = ("resume_on_start", "copy_on_select", "notify_desktop", "notify_sound", "budget_refuse")
# Words for the fields whose name alone would read oddly in an error message.
_LABELS = {
    "session_daily_tokens": "daily token budget per session",
    "budget_refuse": "refuse calls over budget",
}


def is_databricks_app(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("DATABRICKS_APP_NAME") or env.get("DATABRICKS_APP_PORT"))


def validate(field: str, value: Any) -> Any:
    """Parse and check one value; raise SettingsError with a readable reason."""
    label = _LABELS.get(field, field.replace("_", " "))
    if field in _INT_BOUNDS:
        lo, hi = _INT_BOUNDS[field]
        text = str(value).strip()
        if field == "session_daily_tokens":
            text = re.sub(r"(?<=\d)[,_ ](?=\d{3}(?!\d))", "", text)  # "2,000,000" as people write it
        try:
            if isinstance(value, bool):
                raise ValueError
            number = int(text)
        except ValueError:
            raise SettingsError(f"{label} must be a whole number, got '{str(value)[:40]}'") from None
        if not lo <= number <= hi:
            shown = str(number) if len(str(number)) <= 20 else f"{str(number)[:20]}…"
            if field == "session_daily_tokens":
                raise SettingsError(f"{label} must be 0 (no budget) or a whole number of tokens up to {hi:,}, "
                                    f"got {shown}")
            raise SettingsError(f"{label} must be between {lo} and {hi}, got {shown}")
        return number
    text = "" if value is None else str(value).strip()
    if field.endswith("_model"):
        if not text:
            raise SettingsError(f"{label} cannot be empty")
        if not _MODEL_RE.match(text):
            raise SettingsError(f"{label} '{text}' has characters a model endpoint name cannot have")
        return text
    if field in ("gateway_host", "databricks_host"):
        return _validate_url(text) or None
    if field == "default_project":
        if text and not _PROJECT_RE.match(text):
            raise SettingsError(f"project folder '{text}' must be a plain folder name (letters, digits, . _ -)")
        return text
    if field == "permission_mode":
        try:
            return PermissionMode(text)
        except ValueError:
            choices = ", ".join(m.value for m in PermissionMode)
            raise SettingsError(f"permission mode must be one of {choices}") from None
    if field == "allowed_hosts":
        return parse_host_names(text)
    if field in _BOOLS:
        if isinstance(value, bool):
            return value
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("", "0", "false", "no", "off"):
            return False
        raise SettingsError(f"{label} must be true or false, got '{text}'")
    if field == "theme":
        if text not in THEMES:
            raise SettingsError(f"theme must be one of {', '.join(THEMES)}")
        return text
    raise SettingsError(f"unknown setting '{field}'")


def home_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("HOME") or Path.home())


def overrides_path(home: Path) -> Path:
    return homefiles.coda_dir(home) / "settings.json"


def load_overrides(home: Path) -> dict[str, Any]:
    raw = statefile.read_json(overrides_path(home), default={})
    return raw if isinstance(raw, dict) else {}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from defaults, the environment and saved overrides.

    A bad environment value is ignored (the default serves) rather than
    stopping the app: a deployment typo must not lock the owner out.
    """
    env = os.environ if env is None else env
    home = home_dir(env)
    values: dict[str, Any] = {}
    for var, field in ENV_VARS.items():
        if env.get(var, "").strip():
            try:
                values[field] = validate(field, env[var])
            except SettingsError:
                pass
    for field, value in load_overrides(home).items():
        if field in EDITABLE:
            try:
                values[field] = validate(field, value)
            except SettingsError:
                pass
    return Settings(home=home, **values)


def save_overrides(changes: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Validate every change first, then persist all of them, or none."""
    home = home_dir(env)
    clean: dict[str, Any] = {}
    for field, value in changes.items():
        if field not in EDITABLE:
            raise SettingsError(f"'{field}' cannot be changed from the app")
        clean[field] = validate(field, value)
    merged = {**load_overrides(home), **clean}
    statefile.write_json(overrides_path(home), merged)
    return load_settings(env)


def reset_overrides(env: Mapping[str, str] | None = None) -> Settings:
    try:
        overrides_path(home_dir(env)).unlink()
    except FileNotFoundError:
        pass
    return load_settings(env)


def base_url_path() -> str:
    """Streamlit's ``server.baseUrlPath`` as a URL prefix: ``""`` or ``"/coda"`` (no trailing slash).

    Streamlit serves its own pages under it but mounts ``st.App(routes=...)``
    exactly as given, so every path of ours is built with this prefix.
    """
    from streamlit import config  # only the server has it set; the sync hook never calls this

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}" if base else ""


def server_address() -> str:
    """Streamlit's ``server.address`` (the bind address), ``""`` when unset."""
    from streamlit import config

    return str(config.get_option("server.address") or "").strip()
