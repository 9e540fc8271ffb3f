"""Can an agent start right now, and if not, why and what fixes it (the Launch card's logic)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lib.agents import installer
from lib.agents.base import NO_HOST, Agent
from lib.agents.config import config_status
from lib.agents.registry import find_executable
from lib.agents.setup import BootSetup, StepStatus, install_step_id
from lib.settings import Settings


class Fix(StrEnum):
    """What the card offers instead of "Start"."""

    INSTALL = "install"
    TOKEN = "token"
    HOST = "host"


@dataclass(frozen=True)
class Readiness:
    """What one card shows: can it start, and if not, why and what fixes it."""

    installed: bool
    version: str | None
    model: str | None
    endpoint: str | None
    problem: str | None = None  # None = ready to start
    fix: Fix | None = None

    @property
    def installing(self) -> bool:
        return bool(self.problem and self.problem.startswith("being installed"))


def readiness(agent: Agent, settings: Settings, token: str | None, setup: BootSetup) -> Readiness:
    """Decide from the install on disk, the boot setup's progress, the settings and the token."""
    version = installer.installed_version(agent, settings.home)
    path = find_executable(agent, settings.home)
    installed = path is not None and (not agent.npm_package or installer.is_installed(agent, settings.home))
    model = agent.model(settings)
    endpoint = agent.endpoint(settings) if agent.endpoint else None
    if not installed:
        step = setup.step(install_step_id(agent.id))
        if step is not None and (step.state == StepStatus.RUNNING
                                 or (step.state == StepStatus.PENDING and setup.state() == StepStatus.RUNNING)):
            why = "being installed by the boot setup…"
        elif step is not None and step.state == StepStatus.FAILED:
            why = f"install failed: {step.error}"
        else:
            why = f"not installed ({agent.npm_spec or agent.executable} is missing)"
        return Readiness(False, version, model, endpoint, why, Fix.INSTALL if agent.npm_package else None)
    reason = config_status(agent.id, settings, token)
    if reason is None:
        return Readiness(True, version, model, endpoint)
    return Readiness(True, version, model, endpoint, reason, Fix.HOST if reason == NO_HOST else Fix.TOKEN)
