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

import json
import os
import sys
from collections.abc import Collection, Mapping

GIT: tuple[str, ...] = ("GIT_",)
DATABRICKS: tuple[str, ...] = ("DATABRICKS_",)


def scrubbed(env: Mapping[str, str] | None, prefixes: tuple[str, ...],
             names: Collection[str] = ()) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``) without variables starting with one of
    ``prefixes`` (e.g. ``GIT + DATABRICKS``) or named in ``names``."""
    env = os.environ if env is None else env
    return {k: v for k, v in env.items() if not k.startswith(prefixes) and k not in names}


# ---------------------------------------------------------------- the server's own environment

# The platform hands secrets to the app as environment variables (app.yaml
# ``valueFrom``). /proc/<pid>/environ keeps the environment a process was
# started with, whatever os.environ says later, so anything running as the
# same user (every terminal) could read them from the server's entry there.
SECRET_NAMES = frozenset({"DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET"})
SECRET_SUFFIXES = ("_TOKEN", "_SECRET", "_PASSWORD", "_API_KEY")
HANDOVER_FD_ENV = "CODA_SECRETS_FD"
_MAX_HANDOVER = 60_000  # stays below a pipe's buffer, so the write never blocks
_settled = False


def is_secret(name: str) -> bool:
    """Variables whose values must not sit in the server's /proc environ."""
    return name in SECRET_NAMES or name.endswith(SECRET_SUFFIXES)


def keep_secrets_out_of_process_environment(*, may_reexec: bool) -> bool:
    """Re-execute the server once with its secrets moved from the environment into a pipe.

    First call (started with secrets in the environment, ``may_reexec``):
    write them to a pipe, then ``execve`` the same command line with the
    secrets removed and the pipe's read end inherited. Second call (in the
    re-executed process): read them back into ``os.environ`` only, which is
    process memory, not the kernel's copy of the start environment. The PID
    stays the same. Only the launcher's ``python app.py`` entry may re-execute:
    under ``streamlit run`` the server socket is already open by the time the
    script is read. Later calls in the same process do nothing. Returns False
    when secrets stay in the start environment (the caller says so).
    """
    global _settled
    if _settled:
        return True
    fd_text = os.environ.pop(HANDOVER_FD_ENV, None)
    if fd_text is not None:
        try:
            with os.fdopen(int(fd_text), "rb") as pipe:
                handed = json.loads(pipe.read() or b"{}")
        except (OSError, ValueError):
            handed = {}
        os.environ.update({k: v for k, v in handed.items() if isinstance(k, str) and isinstance(v, str)})
        _settled = True
        return True
    secrets = {k: v for k, v in os.environ.items() if is_secret(k)}
    if not secrets:
        _settled = True
        return True
    payload = json.dumps(secrets).encode()
    if not may_reexec or len(payload) > _MAX_HANDOVER or not getattr(sys, "orig_argv", None):
        _settled = True
        return False
    read_end, write_end = os.pipe()
    os.write(write_end, payload)
    os.close(write_end)
    os.set_inheritable(read_end, True)
    env = {k: v for k, v in os.environ.items() if not is_secret(k)}
    env[HANDOVER_FD_ENV] = str(read_end)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)
