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
    font_size: int = 14
    theme: str = "auto"
    permission_mode: PermissionMode = PermissionMode.ASK

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
    "CODA_PERMISSION_MODE": "permission_mode",
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
)

_INT_BOUNDS = {
    "session_cap": (1, 50),
    "idle_timeout_s": (60, 30 * 24 * 3600),
    "scrollback_bytes": (64 * 1024, 256 * 1024 * 1024),
    "upload_max_bytes": (1024, 10 * 1024 * 1024 * 1024),
    "font_size": (8, 32),
}


def is_databricks_app(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("DATABRICKS_APP_NAME") or env.get("DATABRICKS_APP_PORT"))


def validate(field: str, value: Any) -> Any:
    """Parse and check one value; raise SettingsError with a readable reason."""
    label = field.replace("_", " ")
    if field in _INT_BOUNDS:
        lo, hi = _INT_BOUNDS[field]
        try:
            number = int(str(value).strip())
        except ValueError:
            raise SettingsError(f"{label} must be a whole number, got '{value}'") from None
        if not lo <= number <= hi:
            raise SettingsError(f"{label} must be between {lo} and {hi}, got {number}")
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
