"""Authentication: OIDC discovery, the client-credentials token endpoint, and
the Bearer check in front of every API and model route.

What databricks-sdk 0.162 does for ``auth_type="oauth-m2m"`` (read from its
source): ``Config()`` first GETs ``/.well-known/databricks-config`` and turns
its ``oidc_endpoint`` into ``discovery_url = {oidc_endpoint}/.well-known/
oauth-authorization-server`` (without ``oidc_endpoint`` there, m2m cannot
start: the SDK then fetches a ``None`` URL). It GETs that discovery document
for ``token_endpoint``, and on the first API call POSTs
``grant_type=client_credentials&scope=all-apis`` form-encoded to it, with the
client id/secret in an HTTP Basic header. It needs ``access_token``,
``token_type`` and ``expires_in`` back and sends
``Authorization: {token_type} {access_token}``.

Rejections follow the real service: no credential -> 401 UNAUTHENTICATED;
unknown, revoked or expired token -> 403 "Invalid access token." (the real
service has also been seen answering ``"error_code": 403`` as a number;
``WorkspaceState.invalid_token_error_code`` can switch to that).
"""

from __future__ import annotations

import base64
import binascii
from typing import Callable, List, Optional, Tuple
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response
from .state import Identity, WorkspaceState

PROTECTED_PREFIXES: Tuple[str, ...] = ("/api/", "/serving-endpoints/", "/anthropic/", "/openai/", "/gemini/")


def identity_of(request: Request) -> Identity:
    """The principal the auth middleware resolved for this request."""
    return request.scope["fake_identity"]


def _credential(authorization: str) -> Optional[str]:
    """The token in ``Bearer <t>``, or in ``Basic token:<t>`` (Databricks accepts both)."""
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if user == "token" and password:
            return password
    return None


class AuthMiddleware:
    """Pure ASGI middleware: every protected path needs a usable token."""

    def __init__(self, app: ASGIApp, state: WorkspaceState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = _credential(headers.get("authorization", ""))
        if token is None:
            response = error_response(
                401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API."
            )
            await response(scope, receive, send)
            return
        rec = self.state.lookup_token(token)
        if rec is None or not rec.usable():
            code = self.state.invalid_token_error_code
            response = JSONResponse(
                {"error_code": code, "message": "Invalid access token."},
                status_code=403,
                headers={"x-databricks-reason-phrase": "Invalid access token."},
            )
            await response(scope, receive, send)
            return
        scope["fake_identity"] = rec.identity
        await self.app(scope, receive, send)


def oidc_routes(state: WorkspaceState, base_url: Callable[[], str]) -> List[Route]:
    """Discovery documents and the token endpoint (no auth needed, like the real ones)."""

    async def databricks_config(request: Request) -> Response:
        base = base_url()
        return JSONResponse(
            {
                "oidc_endpoint": f"{base}/oidc",
                "workspace_id": state.workspace_id,
                "cloud": "aws",
            }
        )

    async def discovery(request: Request) -> Response:
        base = base_url()
        return JSONResponse(
            {
                "issuer": f"{base}/oidc",
                "authorization_endpoint": f"{base}/oidc/v1/authorize",
                "token_endpoint": f"{base}/oidc/v1/token",
                "jwks_uri": f"{base}/oidc/jwks.json",
                "scopes_supported": ["all-apis", "offline_access", "openid", "profile", "email", "sql"],
                "response_types_supported": ["code", "id_token"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "claims_supported": ["iss", "sub", "aud", "iat", "exp", "jti", "name", "family_name", "email"],
                "request_uri_parameter_supported": False,
            }
        )

    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = client_secret = None
        grant = form.get("grant_type")
        if grant != "client_credentials":
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": f"Grant type {grant!r} is not supported"},
                status_code=400,
            )
        if client_id != state.client_id or client_secret != state.client_secret:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client authentication failed"}, status_code=401
            )
        scope = form.get("scope") or "all-apis"
        rec = state.create_oauth_token(state.service_principal, scope, f"{base_url()}/oidc")
        return JSONResponse(
            {
                "access_token": rec.value,
                "token_type": "Bearer",
                "expires_in": state.oauth_token_lifetime_s,
                "scope": scope,
            },
            headers={"cache-control": "no-store"},
        )

    return [
        Route("/.well-known/databricks-config", databricks_config, methods=["GET"]),
        Route("/oidc/.well-known/oauth-authorization-server", discovery, methods=["GET"]),
        Route("/oidc/v1/token", token, methods=["POST"]),
    ]
