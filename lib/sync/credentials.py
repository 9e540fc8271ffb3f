"""Read the workspace credentials and owner the app keeps on disk.

The hook runs detached from any terminal session, so it cannot trust its
environment (an agent may have a stale or foreign ``DATABRICKS_*``): it reads
the files the app keeps current instead. ``~/.databrickscfg`` ``[DEFAULT]``
holds ``host`` and ``token``; ``~/.coda/identity.json`` holds ``owner``.
"""

from __future__ import annotations

import configparser
import json
from dataclasses import dataclass
from pathlib import Path

from lib.settings import normalize_host
from lib.sync import paths


@dataclass(frozen=True)
class Credentials:
    """What a sync needs to pick and reach its target; any field may be missing."""

    host: str | None
    token: str | None
    owner: str | None

    @property
    def workspace_ready(self) -> bool:
        return bool(self.host and self.token and self.owner)


def read_databrickscfg(home: Path) -> tuple[str | None, str | None]:
    """``(host, token)`` from the ``[DEFAULT]`` profile; ``(None, None)`` when absent or unreadable."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string((home / paths.DATABRICKSCFG).read_text())
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None, None
    section = parser.defaults()
    token = (section.get("token") or "").strip() or None
    return normalize_host(section.get("host")), token


def read_owner(home: Path) -> str | None:
    """The app owner's email, as resolved by the app at boot."""
    try:
        data = json.loads((home / paths.IDENTITY_FILE).read_text())
    except (OSError, ValueError):
        return None
    owner = data.get("owner") if isinstance(data, dict) else None
    return owner.strip() if isinstance(owner, str) and owner.strip() else None


def read_credentials(home: Path) -> Credentials:
    host, token = read_databrickscfg(home)
    return Credentials(host=host, token=token, owner=read_owner(home))
