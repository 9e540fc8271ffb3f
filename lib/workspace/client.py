"""The one place that builds ``WorkspaceClient`` objects.

The SDK refuses to guess when both a token and client credentials are in the
environment, reads ``DATABRICKS_*`` from the environment behind our back, and
retries for five minutes by default. Every caller here passes credentials
explicitly, names the auth type, and gets a bounded retry time, so a dead
workspace costs seconds, not minutes.
"""

from __future__ import annotations

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config

from lib.settings import normalize_host

DEFAULT_RETRY_TIMEOUT_S = 20


def pat_client(host: str, token: str, *, retry_timeout_s: int = DEFAULT_RETRY_TIMEOUT_S) -> WorkspaceClient:
    """A client acting as the user who owns ``token``."""
    cfg = Config(
        host=normalize_host(host),
        token=token.strip(),
        auth_type="pat",
        retry_timeout_seconds=retry_timeout_s,
        http_timeout_seconds=max(5, retry_timeout_s),
    )
    return WorkspaceClient(config=cfg)


def service_principal_client(
    host: str, client_id: str, client_secret: str, *, retry_timeout_s: int = DEFAULT_RETRY_TIMEOUT_S
) -> WorkspaceClient:
    """A client acting as the app's own service principal (OAuth M2M)."""
    cfg = Config(
        host=normalize_host(host),
        client_id=client_id,
        client_secret=client_secret,
        auth_type="oauth-m2m",
        retry_timeout_seconds=retry_timeout_s,
        http_timeout_seconds=max(5, retry_timeout_s),
    )
    return WorkspaceClient(config=cfg)


def describe_error(exc: BaseException, host: str | None = None) -> str:
    """A sentence for the UI and logs; never contains a token.

    The SDK's own messages for an unreachable workspace are cryptic (an OAuth
    login without the workspace's OIDC metadata reports "Invalid URL 'None'"),
    so those are put in plain words.
    """
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
    chain = [exc, exc.__cause__, exc.__context__]
    where = f" at {host}" if host else ""
    unreachable = any(isinstance(e, (ConnectionError, TimeoutError)) for e in chain if e is not None)
    if unreachable or "Invalid URL 'None'" in text:
        return f"the workspace{where} did not answer (connection refused or timed out)"
    return f"{type(exc).__name__}: {text}"
