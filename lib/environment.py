"""Which inherited environment variables a process we start must not see, and why.

Two families leak into places they do not belong:

- ``GIT_*``: git exports ``GIT_INDEX_FILE``, ``GIT_DIR`` and friends to its
  hooks, and a shell may carry ``GIT_CONFIG_GLOBAL``. A git command of ours
  that inherits them works on the committing repository's index or on someone
  else's config instead of the one it names.
- ``DATABRICKS_*``: the app's own credentials and platform settings. Terminals
  and npm must not see them, and the sync hook must not trust whatever a shell
  exported: everything reads the files the app keeps current instead
  (``lib.homefiles``).

Standard library only: the sync hook scrubs its environment before importing
anything slow.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

GIT: tuple[str, ...] = ("GIT_",)
DATABRICKS: tuple[str, ...] = ("DATABRICKS_",)


def scrubbed(env: Mapping[str, str] | None, prefixes: tuple[str, ...],
             names: Collection[str] = ()) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``) without variables starting with one of
    ``prefixes`` (e.g. ``GIT + DATABRICKS``) or named in ``names``."""
    env = os.environ if env is None else env
    return {k: v for k, v in env.items() if not k.startswith(prefixes) and k not in names}
