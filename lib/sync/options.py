"""Tunables of the sync engine, with an optional override file.

The hook is a separate, detached process, so knobs cannot be passed as
arguments from the app: they are read from ``~/.coda/sync/options.json``
(missing keys and bad values fall back to the defaults).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib import homefiles

MiB = 1024 * 1024


@dataclass(frozen=True)
class SyncOptions:
    max_file_bytes: int = 10 * MiB
    """Larger files are skipped (and logged): the import API is not for big binaries."""
    workers: int = 8
    """Parallel requests; bounded so a big first sync does not flood the workspace."""
    retry_timeout_s: int = 15
    """Budget the SDK spends retrying one request (its default of 300 s would hang a dead sync)."""
    attempts: int = 5
    """Our own tries per operation on 429/5xx/connection errors (uploads are not retried by the SDK)."""
    backoff_s: float = 0.5
    """First backoff; doubles per attempt, capped at ``backoff_max_s``."""
    backoff_max_s: float = 8.0
    deadline_s: float = 900.0
    """Wall-clock cap of one sync; whatever is left is retried by the next one."""
    import_format: str = "RAW"
    """``RAW`` keeps exact bytes and names; ``AUTO`` may turn .py/.ipynb into notebooks."""
    retry_first_s: float = 1.0
    """A sync that failed for a transient reason is retried after this long, then after twice that..."""
    retry_max_s: float = 300.0
    """... up to this long between attempts, until it gets through (``lib.sync.retry``)."""
    history: bool = True
    """Keep the project's git history in the workspace too (bundles under ``.coda/history``)."""
    history_part_bytes: int = 8 * MiB
    """Bundles larger than this are stored in parts (the import API takes about 10 MB per file)."""
    history_max_bundles: int = 32
    """Past this many incremental bundles, the next upload is one full bundle replacing them all."""
    conversations_every_s: float = 30.0
    """How often the app backs up the agents' conversation stores (only changed files are sent)."""
    watch_every_s: float = 1.0
    """How often the app looks for commits its hook cannot see and for retries that are due."""


def load_options(home: Path) -> SyncOptions:
    """Defaults overlaid with the valid entries of ``options.json``."""
    try:
        raw: Any = json.loads(homefiles.sync_options_path(home).read_text())
    except (OSError, ValueError):
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    base = SyncOptions()
    values: dict[str, Any] = {}
    for field in dataclasses.fields(SyncOptions):
        if field.name not in raw:
            continue
        default = getattr(base, field.name)
        try:
            if isinstance(default, bool):
                if not isinstance(raw[field.name], bool):
                    continue
                value = raw[field.name]
            else:
                value = type(default)(raw[field.name])
        except (TypeError, ValueError):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            continue
        values[field.name] = value
    if values.get("import_format", base.import_format).upper() not in ("RAW", "AUTO"):
        values.pop("import_format", None)
    return dataclasses.replace(base, **values)
