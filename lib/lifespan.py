"""Start-up and shutdown of everything that is not Streamlit itself."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from lib.access.owner import get_resolver
from lib.terminal.pump import use_event_loop
from lib.terminal.registry import get_registry
from lib.settings import is_databricks_app, load_settings

log = logging.getLogger("coda")


def configure_logging() -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_coda", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._coda = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for name in ("coda", "lib"):
        logging.getLogger(name).setLevel(logging.INFO)


def warn_if_exposed(address: str | None) -> None:
    """Locally the app is a shell for whoever reaches the port: say so loudly."""
    if is_databricks_app() or not address:
        return
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = address == "localhost"
    if not loopback:
        log.warning(
            "Listening on %s: anyone who can reach this port gets a shell as this user. "
            "Use 127.0.0.1 unless you mean it.", address,
        )


def _start_background_work() -> None:
    from lib.agents.setup import start_setup
    from lib.sync import install_hook

    settings = load_settings()
    settings.projects_dir.mkdir(parents=True, exist_ok=True)
    get_resolver().start()
    try:
        install_hook(settings.home)
    except Exception as exc:  # noqa: BLE001 - sync is optional; the terminals must still start
        log.warning("Could not install the git hook for workspace sync: %s", exc)
    start_setup(settings)


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    configure_logging()
    from streamlit import config

    warn_if_exposed(config.get_option("server.address"))
    use_event_loop(asyncio.get_running_loop())
    _start_background_work()
    log.info("Coda is up.")
    try:
        yield
    finally:
        log.info("Shutting down: ending all terminal sessions.")
        get_resolver().stop()
        # In a thread: closing waits on the loop to let go of each PTY.
        await asyncio.to_thread(get_registry().close_all)
