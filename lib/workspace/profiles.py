"""Databricks CLI profiles: the sections of ``~/.databrickscfg`` and which one applies.

The file is ``DATABRICKS_CONFIG_FILE`` or ``~/.databrickscfg``; the profile is
``DATABRICKS_CONFIG_PROFILE`` when set, else the one for the workspace host,
else the file's default profile. Read here as the databricks-sdk reads it,
without building a ``Config`` (no network): ``credentials`` uses the chosen
profile as its last source. Separate from ``credentials`` because this is a
file format and a rule about it, with no state, threads or secrets to guard;
``lib.homefiles`` has the app's own one-profile reader and writer.
"""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lib.homefiles import clean_token
from lib.settings import normalize_host


@dataclass(frozen=True)
class Profile:
    """One section of ``~/.databrickscfg``."""

    name: str
    values: dict[str, str] = field(repr=False)

    @property
    def host(self) -> str | None:
        return normalize_host(self.values.get("host"))

    @property
    def token(self) -> str | None:
        return clean_token(self.values.get("token"))

    @property
    def auth_type(self) -> str | None:
        explicit = (self.values.get("auth_type") or "").strip()
        if explicit:
            return explicit
        if self.token:
            return "pat"
        if self.values.get("client_id") and self.values.get("client_secret"):
            return "oauth-m2m"
        return None


def config_file(home: Path, env: Mapping[str, str]) -> Path:
    """``DATABRICKS_CONFIG_FILE`` or ``~/.databrickscfg``."""
    named = (env.get("DATABRICKS_CONFIG_FILE") or "").strip()
    return Path(named).expanduser() if named else home / ".databrickscfg"


def read_profiles(path: Path) -> tuple[dict[str, Profile], str | None]:
    """Every profile of a config file and its ``[__settings__] default_profile``; empty when unreadable."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text())
    except (OSError, configparser.Error, UnicodeDecodeError):
        return {}, None
    profiles: dict[str, Profile] = {}
    if parser.defaults():
        profiles["DEFAULT"] = Profile("DEFAULT", dict(parser.defaults()))
    # Sections without DEFAULT's keys mixed in, as the SDK reads them.
    for name, values in parser._sections.items():  # type: ignore[attr-defined]
        if name != "__settings__":
            profiles[name] = Profile(name, dict(values))
    settings = parser._sections.get("__settings__", {})  # type: ignore[attr-defined]
    return profiles, (settings.get("default_profile") or "").strip() or None


def choose_profile(path: Path, env: Mapping[str, str], host: str | None) -> Profile | None:
    """The profile of the file at ``path`` that applies for ``host``; ``None`` when none does."""
    profiles, default = read_profiles(path)
    if not profiles:
        return None
    named = (env.get("DATABRICKS_CONFIG_PROFILE") or "").strip()
    if named:
        return profiles.get(named)
    if host:
        matching = [p for p in profiles.values() if p.host == host]
        named_first = sorted(matching, key=lambda p: p.name == "DEFAULT")
        return named_first[0] if named_first else None
    if default and default in profiles:
        return profiles[default]
    return profiles.get("DEFAULT")


def mtime(path: Path) -> str:
    """The file's modification time (ns) as text, ``""`` when missing: a profile's cache key changes with it."""
    try:
        return str(path.stat().st_mtime_ns)
    except OSError:
        return ""
