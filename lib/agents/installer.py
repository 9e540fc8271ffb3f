"""Install the agents' CLIs from npm into ``~/.local`` at their pinned versions.

Databricks Apps containers start without the CLIs and ``HOME`` is writable,
so each boot checks ``~/.local`` and installs what is missing with
``npm install -g --prefix ~/.local <pkg>@<ver>``. The check reads one
``package.json`` per agent, so a boot with everything in place costs
milliseconds, not an npm run.

Tests (and anyone debugging) can replace an agent's package spec with the
environment variable ``CODA_NPM_SPEC_<ID>`` (e.g. ``CODA_NPM_SPEC_CLAUDE=
/path/to/pkg.tgz``): a spec that cannot install shows how failures look
without touching the internet. With an override the version check is skipped
and the program being present counts as installed. ``CODA_SKIP_INSTALL=1``
turns installing off entirely (app tests that do not need the CLIs).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lib.agents.base import Agent
from lib.agents.registry import local_bin
from lib.environment import DATABRICKS, scrubbed

DEFAULT_TIMEOUT_S = 600
SPEC_ENV_PREFIX = "CODA_NPM_SPEC_"
SKIP_ENV = "CODA_SKIP_INSTALL"


def installs_disabled(env: Mapping[str, str] | None = None) -> bool:
    """``CODA_SKIP_INSTALL=1``: never run npm (app tests, air-gapped machines)."""
    env = os.environ if env is None else env
    return env.get(SKIP_ENV, "").strip() == "1"


@dataclass(frozen=True)
class InstallResult:
    """Outcome of one install attempt; ``error`` is a short readable reason."""

    ok: bool
    skipped: bool = False
    version: str | None = None
    error: str = ""


def prefix_dir(home: Path) -> Path:
    """The npm ``--prefix`` (``~/.local``), whose ``bin`` sessions put first on PATH."""
    return home / ".local"


def spec_override(agent: Agent, env: Mapping[str, str] | None = None) -> str | None:
    """The ``CODA_NPM_SPEC_<ID>`` override for this agent, if set."""
    env = os.environ if env is None else env
    value = env.get(SPEC_ENV_PREFIX + agent.id.upper(), "").strip()
    return value or None


def package_spec(agent: Agent, env: Mapping[str, str] | None = None) -> str | None:
    """What ``npm install`` gets for this agent: the override or ``pkg@pinned``."""
    return spec_override(agent, env) or agent.npm_spec


def installed_version(agent: Agent, home: Path) -> str | None:
    """Version of the agent's npm package under ``~/.local``, or ``None``."""
    if not agent.npm_package:
        return None
    manifest = prefix_dir(home) / "lib" / "node_modules" / agent.npm_package / "package.json"
    try:
        version = json.loads(manifest.read_text()).get("version")
    except (OSError, ValueError):
        return None
    return version if isinstance(version, str) else None


def is_installed(agent: Agent, home: Path, env: Mapping[str, str] | None = None) -> bool:
    """True when the program is in ``~/.local/bin`` at the pinned version (or overridden)."""
    program = local_bin(home) / agent.executable
    if not (program.exists() and os.access(program, os.X_OK)):
        return False
    if spec_override(agent, env) or not agent.npm_version:
        return True
    return installed_version(agent, home) == agent.npm_version


def _npm_error(output: str) -> str:
    """The informative lines of npm's output ("npm error ..."), shortened for the UI."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines
              if line.lower().startswith(("npm err", "npm error")) and "A complete log" not in line]
    chosen = errors or lines[-5:]
    text = " / ".join(chosen)[-600:]
    return text or "npm failed without output"


def install(
    agent: Agent,
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    force: bool = False,
) -> InstallResult:
    """Install one agent's CLI unless it is already there; never raises.

    npm runs with the app's environment (its registry and proxy settings)
    plus nothing secret; its output is only kept when it fails.
    """
    if not agent.npm_package:
        return InstallResult(ok=True, skipped=True)
    env = dict(os.environ if env is None else env)
    if not force and is_installed(agent, home, env):
        return InstallResult(ok=True, skipped=True, version=installed_version(agent, home))
    npm = shutil.which("npm", path=env.get("PATH"))
    if npm is None:
        return InstallResult(
            ok=False, error="npm is not installed on this machine (Node.js is needed for the agent CLIs)"
        )
    spec = package_spec(agent, env)
    prefix = prefix_dir(home)
    prefix.mkdir(parents=True, exist_ok=True)
    npm_env = scrubbed(env, DATABRICKS)
    npm_env.update(HOME=str(home), npm_config_update_notifier="false", npm_config_fund="false",
                   npm_config_audit="false")
    argv = [npm, "install", "-g", "--prefix", str(prefix), "--no-fund", "--no-audit", str(spec)]
    try:
        # Own process group: on timeout npm's children (postinstall scripts) go too.
        proc = subprocess.Popen(argv, env=npm_env, cwd=str(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    except OSError as exc:
        return InstallResult(ok=False, error=f"could not run npm: {exc.strerror or exc}")
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return InstallResult(ok=False, error=f"npm install {spec} did not finish within {timeout_s:g} s")
    if proc.returncode != 0:
        return InstallResult(ok=False, error=f"npm install {spec} failed: {_npm_error(err + out)}")
    if not is_installed(agent, home, env):
        return InstallResult(
            ok=False, error=f"npm install {spec} finished but {local_bin(home) / agent.executable} is missing"
        )
    return InstallResult(ok=True, version=installed_version(agent, home))
