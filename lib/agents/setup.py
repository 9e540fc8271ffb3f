"""Boot setup: make the machine ready for agents, in the background.

On every start: install missing CLIs (in parallel, each with a timeout),
check the workspace token, write every agent's config files, set the git
identity, and restore the projects (and agent conversations) the workspace
has and HOME does not (``lib.sync.restore_all``; never overwrites). Nothing
here blocks the app: pages read per-step state (pending, running, ok,
failed, skipped; duration; error) and ``/health`` reads the
overall state. Every step is idempotent, so a second boot with everything in
place finishes in well under a second, and ``retry_failed`` reruns only what
failed.
"""

from __future__ import annotations

import getpass
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from lib.agents import config as agent_config
from lib.agents import installer
from lib.agents.base import NO_HOST, ConfigResult, ConfigState, Loopback
from lib.agents.registry import get_agent, installable_agents
from lib.environment import DATABRICKS, GIT, scrubbed
from lib.settings import Settings, load_settings
from lib.sync import restore_all
from lib.workspace import tokens

log = logging.getLogger(__name__)



class StepStatus(StrEnum):
    """One step's state (also the overall state ``/health`` reports)."""

    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


PENDING, RUNNING, OK, FAILED, SKIPPED = StepStatus
OWNER_WAIT_S = 30.0
RESTORE_STEP = "restore"  # projects and agent conversations from the workspace (lib.sync.restore_all)


@dataclass(frozen=True)
class StepState:
    """One setup step as pages show it."""

    id: str
    label: str
    state: StepStatus = StepStatus.PENDING
    started_at: float | None = None
    duration_s: float | None = None
    error: str = ""
    detail: str = ""
    agent_id: str | None = None  # set on install steps


def install_step_id(agent_id: str) -> str:
    """The id of the step that installs ``agent_id``'s CLI (the launcher links to it)."""
    return f"install:{agent_id}"


# ---------------------------------------------------------------- git identity


def _git_get(key: str, env: Mapping[str, str]) -> str:
    proc = subprocess.run(["git", "config", "--global", "--get", key], env=dict(env),
                          capture_output=True, text=True, timeout=10)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _git_set(key: str, value: str, env: Mapping[str, str]) -> None:
    proc = subprocess.run(["git", "config", "--global", key, value], env=dict(env),
                          capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"git config {key} failed: {proc.stderr.strip()[:200]}")


OwnerLookup = Callable[[float], tuple[str | None, str | None]]


def no_owner(wait_s: float) -> tuple[str | None, str | None]:
    """Local runs: nobody to wait for; git keeps (or gets) the local user's identity."""
    return None, None


def configure_git_identity(home: Path, email: str | None, name: str | None) -> str:
    """Set ``user.name``/``user.email`` globally for the app's HOME; returns what was done.

    With a known owner both are set (commits sync to their workspace folder).
    Without one (local runs) an identity the user already has is left alone
    and only missing values get the local user name.
    """
    env = scrubbed({**os.environ, "HOME": str(home)}, GIT + DATABRICKS)  # our HOME's global config, not GIT_CONFIG_*'s
    local_user = getpass.getuser()
    wanted: dict[str, str] = {}
    if email:
        wanted = {"user.name": name or email.split("@")[0], "user.email": email}
    else:
        wanted = {"user.name": local_user, "user.email": f"{local_user}@localhost"}
    changed = []
    for key, value in wanted.items():
        current = _git_get(key, env)
        if current == value or (current and not email):
            continue
        _git_set(key, value, env)
        changed.append(key)
    who = f"{_git_get('user.name', env)} <{_git_get('user.email', env)}>"
    return f"{who} (updated {', '.join(changed)})" if changed else f"{who} (already set)"


# ---------------------------------------------------------------- the runner


class BootSetup:
    """Runs the setup steps in a background thread and keeps their state."""

    def __init__(
        self,
        token_store: tokens.TokenStore,
        install: Callable[..., installer.InstallResult] = installer.install,
        owner: OwnerLookup = no_owner,
        models: Callable[[], Loopback | None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._tokens = token_store
        self._models = models  # the app's model gateway: agents' configs then hold no token
        self._install = install
        self._owner = owner
        self._settings: Settings | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self._steps: dict[str, StepState] = {}
        self._total_s: float | None = None
        self._last_config_results: list[ConfigResult] = []
        for step in self._step_list():
            self._steps[step.id] = step

    @staticmethod
    def _step_list() -> list[StepState]:
        steps = [StepState(install_step_id(a.id), f"Install {a.name} ({a.npm_spec})", agent_id=a.id)
                 for a in installable_agents()]
        steps += [
            StepState("token", "Check the workspace token"),
            StepState("configs", "Write agent config files"),
            StepState("git", "Set the git identity"),
            StepState(RESTORE_STEP, "Restore projects from the workspace"),
        ]
        return steps

    # -- reading state

    def steps(self) -> list[StepState]:
        with self._lock:
            return list(self._steps.values())

    def step(self, step_id: str) -> StepState | None:
        with self._lock:
            return self._steps.get(step_id)

    def state(self) -> str:
        """Overall: pending (not started), running, failed (any step), or ok."""
        with self._lock:
            if not self._started:
                return PENDING
            states = [s.state for s in self._steps.values()]
            if (self._thread is not None and self._thread.is_alive()) or RUNNING in states:
                return RUNNING
            if FAILED in states:
                return FAILED
            if PENDING in states:
                return RUNNING
            return OK

    @property
    def total_s(self) -> float | None:
        """Wall time of the last full run (what "a second boot is fast" measures)."""
        return self._total_s

    def wait(self, timeout_s: float) -> bool:
        """Block until the current run ends (tests and shutdown); True when it did."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    # -- running

    def start(self, settings: Settings) -> bool:
        """Run every step in the background; False if a run is already going."""
        return self._launch(settings, [s.id for s in self._step_list()], full=True)

    def retry_failed(self, settings: Settings | None = None) -> bool:
        """Rerun only the failed steps (in the background)."""
        with self._lock:
            failed = [s.id for s in self._steps.values() if s.state == FAILED]
        if not failed:
            return False
        return self._launch(settings or self._settings or load_settings(), failed, full=False)

    def install_agent(self, agent_id: str, settings: Settings | None = None) -> bool:
        """(Re)install one agent's CLI and rewrite configs: the launcher's "fix" button."""
        step_id = install_step_id(agent_id)
        if step_id not in self._steps:
            return False
        return self._launch(settings or self._settings or load_settings(), [step_id, "configs"], full=False)

    def rewrite_configs(self, settings: Settings) -> list[ConfigResult]:
        """Write every agent's files for ``settings`` now (the sidebar's Save)."""
        with self._lock:
            self._settings = settings
        self._run_step("configs", lambda: self._configs(settings))
        return self._last_config_results

    def _launch(self, settings: Settings, step_ids: list[str], *, full: bool) -> bool:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._started = True
            self._settings = settings
            for sid in step_ids:
                self._steps[sid] = replace(self._steps[sid], state=PENDING, error="", detail="",
                                           started_at=None, duration_s=None)
            self._thread = threading.Thread(target=self._run, args=(settings, step_ids, full),
                                            name="coda-setup", daemon=True)
            self._thread.start()
        return True

    def _run(self, settings: Settings, step_ids: list[str], full: bool) -> None:
        began = time.monotonic()
        installs = [sid for sid in step_ids if self._steps[sid].agent_id is not None]
        with ThreadPoolExecutor(max_workers=max(1, len(installs)), thread_name_prefix="coda-npm") as pool:
            futures = [pool.submit(self._run_step, sid, lambda sid=sid: self._install_step(sid, settings))
                       for sid in installs]
            # Token, configs and git do not need the CLIs: run them meanwhile.
            if "token" in step_ids:
                self._run_step("token", lambda: self._token_step(settings))
            if "configs" in step_ids:
                self._run_step("configs", lambda: self._configs(settings))
            if "git" in step_ids:
                self._run_step("git", lambda: self._git_step(settings))
            if RESTORE_STEP in step_ids:  # after configs (~/.databrickscfg) and the owner (git waited for it)
                self._run_step(RESTORE_STEP, lambda: self._restore_step(settings))
            for future in futures:
                future.result()
        elapsed = time.monotonic() - began
        if full:
            self._total_s = elapsed
        log.info("Setup %s in %.2f s: %s", "finished" if full else "retry finished", elapsed,
                 ", ".join(f"{s.id}={s.state}" for s in self.steps()))

    def _run_step(self, step_id: str, body: Callable[[], tuple[str, str]]) -> None:
        """Run one step, recording state, duration and a readable error."""
        began = time.monotonic()
        with self._lock:
            self._steps[step_id] = replace(self._steps[step_id], state=RUNNING, started_at=time.time(),
                                           error="", detail="", duration_s=None)
        try:
            state, text = body()
        except Exception as exc:  # a step must never kill the setup thread
            log.exception("Setup step %s failed", step_id)
            state, text = FAILED, f"{type(exc).__name__}: {exc}"[:600]
        with self._lock:
            self._steps[step_id] = replace(
                self._steps[step_id],
                state=state,
                duration_s=time.monotonic() - began,
                error=text if state == FAILED else "",
                detail="" if state == FAILED else text,
            )

    # -- the steps: each returns (state, detail-or-error)

    def _install_step(self, step_id: str, settings: Settings) -> tuple[str, str]:
        agent = get_agent(self._steps[step_id].agent_id)
        assert agent is not None
        if installer.installs_disabled():
            if installer.is_installed(agent, settings.home):
                return OK, f"already installed ({installer.installed_version(agent, settings.home) or 'present'})"
            return SKIPPED, f"not installed: installing is turned off ({installer.SKIP_ENV}=1)"
        result = self._install(agent, settings.home)
        if not result.ok:
            return FAILED, result.error
        if result.skipped:
            return OK, f"already installed ({result.version or 'present'})"
        return OK, f"installed {result.version or installer.package_spec(agent)}"

    def _token_step(self, settings: Settings) -> tuple[str, str]:
        status = self._tokens.load_initial(settings)
        if status.state == tokens.MISSING:
            access = self._models() if self._models else None
            if access is not None and access.problem is None:
                # The service principal or a CLI profile serves the agents: a token is only for sync.
                return SKIPPED, ("no personal access token: agents reach models through the app's own "
                                 "credentials; workspace sync needs a token (paste one in the sidebar)")
            return SKIPPED, "no token: paste a personal access token in the sidebar"
        if not settings.databricks_host:
            return SKIPPED, NO_HOST
        status = self._tokens.verify(settings)
        if status.state == tokens.OK:
            return OK, f"works for {status.user}" if status.user else "works"
        return FAILED, status.message

    def _configs(self, settings: Settings) -> tuple[str, str]:
        token = self._tokens.token() if self._tokens.status().usable else None
        results = agent_config.write_all(settings.home, settings, token,
                                         gateway=self._models() if self._models else None)
        self._last_config_results = results
        failed = [r for r in results if r.status is ConfigState.FAILED]
        if failed:
            return FAILED, "; ".join(f"{r.target}: {r.reason}" for r in failed)
        missing = [r for r in results if not r.ok]
        if missing:
            reasons = sorted({r.reason for r in missing})
            return SKIPPED, f"{', '.join(r.target for r in missing)}: {'; '.join(reasons)}"
        return OK, "all agents configured"

    def _progress(self, step_id: str, text: str) -> None:
        """Show how far a running step is (the Setup page draws ``detail`` while it runs)."""
        with self._lock:
            step = self._steps.get(step_id)
            if step is not None and step.state == RUNNING:
                self._steps[step_id] = replace(step, detail=text)

    def _restore_step(self, settings: Settings) -> tuple[str, str]:
        email, _name = self._owner(OWNER_WAIT_S)
        report = restore_all(settings.home, owner=email, progress=lambda text: self._progress(RESTORE_STEP, text))
        if report.skipped_reason:
            return SKIPPED, report.skipped_reason
        return (FAILED if report.failed else OK), report.summary()

    def _git_step(self, settings: Settings) -> tuple[str, str]:
        email, name = self._owner(OWNER_WAIT_S)
        return OK, configure_git_identity(settings.home, email, name)
