"""The pinned agent CLIs for tests: installed from npm once into a cache reused across runs.

The cache is ``CODA_TEST_CLIS`` (default ``~/.cache/coda-test-clis``), an npm
``--prefix``; CI can fill it beforehand with the command
``python -m tests.clis`` prints. The ``clis`` fixture is registered in
``tests/conftest.py`` so every test folder can ask for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.agents import installable_agents

# What each CLI runs for one non-interactive answer.
COMMANDS = {
    "claude": ["claude", "-p", "Say hi."],
    "codex": ["codex", "exec", "--skip-git-repo-check", "Say hi."],
    "gemini": ["gemini", "-p", "Say hi."],
    "opencode": ["opencode", "run", "Say hi."],
}

# Resolved at import, before any test points HOME at a temporary folder.
_DEFAULT_CACHE = Path(os.environ.get("CODA_TEST_CLIS") or Path.home() / ".cache" / "coda-test-clis")


def cli_cache() -> Path:
    """Where the test CLIs live (an npm ``--prefix``)."""
    return _DEFAULT_CACHE


def install_command(prefix: Path, specs: list[str] | None = None) -> list[str]:
    """The npm command that fills the cache (what CI's .ci/run can run up front)."""
    specs = specs if specs is not None else [a.npm_spec for a in installable_agents() if a.npm_spec]
    return ["npm", "install", "-g", "--prefix", str(prefix), "--no-fund", "--no-audit", *specs]


def _installed_version(prefix: Path, package: str) -> str | None:
    try:
        return json.loads((prefix / "lib" / "node_modules" / package / "package.json").read_text()).get("version")
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="session")
def clis() -> Path:
    """The cache prefix with every pinned CLI in it (installing what is missing)."""
    prefix = cli_cache()
    missing = [a.npm_spec for a in installable_agents()
               if _installed_version(prefix, a.npm_package) != a.npm_version or not (prefix / "bin" / a.executable).exists()]
    if missing:
        prefix.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(install_command(prefix, missing), capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"npm could not install {missing}:\n{proc.stderr[-3000:]}"
    return prefix


if __name__ == "__main__":
    print(" ".join(install_command(Path(sys.argv[1]) if len(sys.argv) > 1 else cli_cache())))
