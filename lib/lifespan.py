"""Start-up and shutdown of everything that is not Streamlit itself."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from lib.nodelay import nodelay
from lib.runtime import runtime
from lib.settings import is_databricks_app

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


def loopback_url(address: str | None, port: int, base_path: str | None) -> str | None:
    """How a process on this machine reaches the app; ``None`` when it listens elsewhere only."""
    if address and address not in ("0.0.0.0", "::", "localhost"):
        try:
            if not ipaddress.ip_address(address).is_loopback:
                return None
        except ValueError:
            return None
    base = (base_path or "").strip("/")
    return f"http://127.0.0.1:{port}" + (f"/{base}" if base else "")


def no_nagle(loop: asyncio.AbstractEventLoop, port: int, retries: tuple[float, ...] = (0.5, 2.0)) -> None:
    """Nagle off on the listener (``lib.nodelay``); again a moment later if it was not listening yet."""
    if nodelay(port) == 0 and retries:
        loop.call_later(retries[0], no_nagle, loop, port, retries[1:])


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    configure_logging()
    from streamlit import config

    warn_if_exposed(config.get_option("server.address"))
    runtime().start(asyncio.get_running_loop(), loopback_url(config.get_option("server.address"),
                                                             config.get_option("server.port"),
                                                             config.get_option("server.baseUrlPath")))
    no_nagle(asyncio.get_running_loop(), config.get_option("server.port"))
    log.info("Coda is up.")
    try:
        yield
    finally:
        log.info("Shutting down: ending all terminal sessions.")
        # In a thread: closing waits on the loop to let go of each PTY.
        await asyncio.to_thread(runtime().stop)
