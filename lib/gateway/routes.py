"""The gateway's route: ``{LOCAL_PREFIX}gateway/{api}/{rest}``, loopback only, session key required.

Under ``server.baseUrlPath`` the route lives below the base, like every
route of ours; ``CODA_APP_URL`` (and so the configs' URL) includes the base.
The security middleware lets ``LOCAL_PREFIX`` paths from local requests
through without an owner check; the gateway itself checks, again, that the
request is local and carries a session key (``lib.gateway.proxy``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lib.access.loopback import LOCAL_PREFIX
from lib.gateway.proxy import Gateway
from lib.settings import base_url_path

GATEWAY_PATH = f"{LOCAL_PREFIX}gateway"


def gateway_url(app_url: str) -> str:
    """Where the CLIs reach the gateway, given the app's loopback address (``CODA_APP_URL``)."""
    return app_url.rstrip("/") + GATEWAY_PATH


def build_routes(gateway: Gateway, base: str | None = None) -> list[BaseRoute]:
    """The gateway's route, bound to the runtime's gateway service, under ``base``
    (default ``server.baseUrlPath``: Streamlit mounts our routes exactly as given)."""
    prefix = base_url_path() if base is None else base.rstrip("/")

    async def forward(request: Request) -> Response:
        return await gateway.handle(request)

    return [Route(prefix + GATEWAY_PATH + "/{api}/{rest:path}", forward, methods=["GET", "POST"])]
