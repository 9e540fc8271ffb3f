"""The workspace credentials and owner a sync uses, read from the files the app keeps on disk.

The hook runs detached from any terminal session, so it cannot trust its
environment (an agent may have a stale or foreign ``DATABRICKS_*``): it reads
``~/.databrickscfg`` and ``~/.coda/identity.json`` instead, through
``lib.homefiles``, the same readers the app uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lib import homefiles
from lib.settings import normalize_host


@dataclass(frozen=True)
class Credentials:
    """What a sync needs to pick and reach its target; any field may be missing."""

    host: str | None
    token: str | None
    owner: str | None

    @property
    def workspace_ready(self) -> bool:
        return bool(self.host and self.token and self.owner)


def read_credentials(home: Path) -> Credentials:
    profile = homefiles.read_databrickscfg(home)
    return Credentials(host=normalize_host(profile.host), token=profile.token, owner=homefiles.read_owner(home))
