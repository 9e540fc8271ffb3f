"""Install the one global git hooks folder that triggers a sync after every commit.

``core.hooksPath`` is set once in the user's global git config, so every
repository (including ones an agent clones or ``git init``s later) gets the
hook without per-repo setup. The price: git then ignores each repository's own
``.git/hooks``, so every hook here hands over to ``.git/hooks/<name>`` when the
repository has one (keeping its exit status, so a failing pre-commit still
blocks the commit).

The sync hooks (post-commit, post-merge, post-rewrite) must return at once and
must survive an agent that kills the whole process group when ``git commit``
returns, so they start ``python -m lib.sync hook``, which double-forks into its
own session (see ``lib/sync/__main__.py``) before doing anything slow. The
interpreter and the code location are baked in at install time: the hook runs
with whatever environment the committing shell has, which may be none of ours.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from lib import homefiles
from lib.environment import GIT, scrubbed
from lib.sync.records import log_line

# Hooks git may run from a repository's .git/hooks; each one is chained.
# Left out on purpose: ``push-to-checkout`` and ``proc-receive`` change what git
# does merely by existing (an empty stand-in would break ``updateInstead``
# pushes), and ``reference-transaction``/``post-index-change`` run on nearly
# every git command while almost no repository uses them.
CHAINED_HOOKS = (
    "applypatch-msg",
    "pre-applypatch",
    "post-applypatch",
    "pre-commit",
    "pre-merge-commit",
    "prepare-commit-msg",
    "commit-msg",
    "pre-rebase",
    "post-checkout",
    "pre-push",
    "pre-receive",
    "update",
    "post-receive",
    "post-update",
    "pre-auto-gc",
    "sendemail-validate",
)

# Hooks that start a sync, then chain. A merge commit (``git merge``/``pull``)
# fires post-merge, not post-commit; ``commit --amend`` and ``rebase`` fire
# post-rewrite once for the whole rewrite.
SYNC_HOOKS = ("post-commit", "post-merge", "post-rewrite")

MARKER = "installed by coda (lib/sync/hook.py)"

# git runs hooks from the worktree root (or the git dir of a bare repo);
# --git-path would answer with core.hooksPath itself, so use the common dir.
_CHAIN = """own="$(git rev-parse --git-common-dir 2>/dev/null)/hooks/{name}"
if [ -f "$own" ] && [ -x "$own" ]; then
  exec "$own" "$@"
fi
exit 0
"""

_CHAIN_KEEP_STATUS = """own="$(git rev-parse --git-common-dir 2>/dev/null)/hooks/{name}"
if [ -f "$own" ] && [ -x "$own" ]; then
  "$own" "$@"
  exit $?
fi
exit 0
"""


def repo_root() -> Path:
    """The folder that holds the ``lib`` package: what ``python -m lib.sync`` needs on its path."""
    return Path(__file__).resolve().parents[2]


def hooks_dir(home: Path) -> Path:
    return homefiles.git_hooks_dir(home)


def chain_script(name: str) -> str:
    """A hook that only hands over to the repository's own hook of the same name."""
    return f"#!/bin/sh\n# {name}: {MARKER}. Runs the repository's own hook, if any.\n" + _CHAIN.format(name=name)


def sync_script(name: str, home: Path, python: str, root: Path) -> str:
    """Start the detached sync (returns in milliseconds), then chain the repository's own hook."""
    q = shlex.quote
    return (
        "#!/bin/sh\n"
        f"# {name}: {MARKER}.\n"
        "# Uploads the project to the Databricks workspace in a detached process,\n"
        f"# then runs the repository's own {name} hook, if any.\n"
        'top="$(git rev-parse --show-toplevel 2>/dev/null)"\n'
        'if [ -n "$top" ]; then\n'
        f"  PYTHONPATH={q(str(root))} {q(python)} -m lib.sync hook --home {q(str(home))} \"$top\""
        f" </dev/null >/dev/null 2>>{q(str(homefiles.sync_text_log_path(home)))} || true\n"
        "fi\n" + _CHAIN_KEEP_STATUS.format(name=name)
    )


def _head(path: Path) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read(300)
    except OSError:
        return ""


def _write_executable(path: Path, text: str) -> None:
    # Replace in one step: a commit may run while the app (re)installs.
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, path)


def _git_env(home: Path) -> dict[str, str]:
    # The global config git reads must be ``home``'s: no GIT_CONFIG_GLOBAL, no XDG_CONFIG_HOME.
    return {**scrubbed(os.environ, GIT, {"XDG_CONFIG_HOME"}), "HOME": str(home)}


def install_hook(home: Path, python: str = sys.executable) -> None:
    """Write ``~/.coda/git-hooks/`` and point the global ``core.hooksPath`` at it.

    Idempotent: the app calls it at every boot, which also refreshes the baked
    in interpreter and code location after a redeploy.
    """
    folder = hooks_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        # A hook this version no longer installs (see CHAINED_HOOKS) must not linger.
        if stale.name not in CHAINED_HOOKS + SYNC_HOOKS and MARKER in _head(stale):
            stale.unlink()
    for name in CHAINED_HOOKS:
        _write_executable(folder / name, chain_script(name))
    for name in SYNC_HOOKS:
        _write_executable(folder / name, sync_script(name, home, python, repo_root()))
    previous = installed_hooks_path(home)
    if previous and Path(previous).expanduser() != folder:
        log_line(home, f"replaced the global core.hooksPath {previous}: its hooks no longer run (repositories' own do)")
    subprocess.run(
        ["git", "config", "--global", "core.hooksPath", str(folder)],
        env=_git_env(home),
        check=True,
        capture_output=True,
        timeout=30,
    )


def installed_hooks_path(home: Path) -> str | None:
    """The global ``core.hooksPath`` as git sees it for ``home`` (for health checks)."""
    proc = subprocess.run(
        ["git", "config", "--global", "--get", "core.hooksPath"],
        env=_git_env(home),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc.stdout.strip() or None
