"""Who owns this app, resolved from the workspace in the background.

On Databricks Apps the owner is the app's ``creator`` (read with the app's
service principal), falling back to the user of ``DATABRICKS_TOKEN``. Until
one of those answers, nobody gets in: a slow or dead workspace delays access,
it never opens it. Locally there is one user and no identity at all.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import requests
from databricks.sdk.errors import NotFound, PermissionDenied, Unauthenticated

from lib import homefiles
from lib.settings import home_dir, host_name, is_databricks_app, normalize_host
from lib.workspace.client import describe_error, pat_client, service_principal_client
from lib.workspace.tokens import env_token

log = logging.getLogger(__name__)

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0


@dataclass(frozen=True)
class OwnerState:
    """What the authorization check needs: the mode, the owner, or why not yet."""

    on_apps: bool
    owner: str | None = None  # email, as the workspace spells it
    display_name: str | None = None
    source: str | None = None  # "app creator" | "token user"
    resolved_at: float | None = None
    error: str | None = None  # why not resolved yet, in detail: for the log, never shown to strangers
    token_user: str | None = None  # whose DATABRICKS_TOKEN the app holds, when known
    public_error: str | None = None  # why not resolved yet, generic: what everyone may be told
    app_url: str | None = None  # the app's own URL (``apps.get(name).url``), when known

    @property
    def app_host(self) -> str | None:
        """The name browsers reach the app by on Databricks Apps, when its URL is known."""
        if not self.app_url:
            return None
        try:
            return host_name(urlsplit(self.app_url).netloc)
        except ValueError:
            return None

    @property
    def token_mismatch(self) -> str | None:
        """A sentence for the owner and the token's user when the two differ, else ``None``."""
        if not self.owner or not self.token_user or self.token_user.casefold() == self.owner.casefold():
            return None
        return (
            f"The workspace token this app uses (DATABRICKS_TOKEN) belongs to {self.token_user}, but the app "
            f"belongs to {self.owner}, its creator. Only {self.owner} can open it; agents and sync act as "
            f"{self.token_user}. Replace the token with one of {self.owner}'s, or paste one in the sidebar."
        )

    @property
    def resolved(self) -> bool:
        return self.owner is not None

    @property
    def email(self) -> str | None:
        return self.owner


class OwnerResolver:
    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        token: Callable[[], str | None] | None = None,
        retry_timeout_s: int = 10,
    ) -> None:
        self._env = dict(os.environ if env is None else env)
        self._token = token or (lambda: env_token(self._env))
        self._retry_timeout_s = retry_timeout_s
        self._state = OwnerState(on_apps=is_databricks_app(self._env))
        if not self._state.on_apps:
            self._state = replace(self._state, error=None)
        elif not self._env.get("DATABRICKS_HOST"):
            self._state = replace(self._state, error="DATABRICKS_HOST is not set", public_error=NOT_CONFIGURED)
        else:
            self._state = replace(self._state, error="looking up the app's owner in the workspace",
                                  public_error=LOOKING)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._changed = threading.Condition()

    @property
    def state(self) -> OwnerState:
        return self._state

    @property
    def env(self) -> Mapping[str, str]:
        """The environment the resolver was built from (the platform's variables)."""
        return self._env

    def start(self) -> None:
        """Resolve in the background with backoff; start-up never waits for it."""
        if not self._state.on_apps or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="owner-resolver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def wait_resolved(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._state.resolved, timeout=timeout)

    def _run(self) -> None:
        delay = BACKOFF_START_S
        while not self._stop.is_set():
            try:
                self._set(self.resolve_once())
                log.info("This app belongs to %s (from the %s).", self._state.owner, self._state.source)
                return
            except Exception as exc:  # noqa: BLE001 - every failure is reported and retried
                reason = str(exc) if isinstance(exc, OwnerLookupError) else describe_error(exc)
                self._set(replace(self._state, error=reason, public_error=public_reason(exc)))
                log.warning("Owner not resolved yet: %s. Retrying in %.0f s.", reason, delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _set(self, state: OwnerState) -> None:
        with self._changed:
            self._state = state
            self._changed.notify_all()
        if state.resolved:
            # The sync hook reads the owner from this file to name the workspace folder.
            assert state.owner is not None
            homefiles.write_identity(home_dir(self._env), owner=state.owner, display_name=state.display_name,
                                     source=state.source, resolved_at=state.resolved_at)

    def resolve_once(self) -> OwnerState:
        """Ask the workspace once; raise ``OwnerLookupError`` when there is no definite answer yet.

        The rule (README "Who gets in"): the app's creator owns the app. The
        token's user owns it only when the creator cannot exist: no app name
        or service principal credentials in the environment (a local run
        pretending to be an app), or the workspace answers definitively that
        the app or its creator is not there (404, empty creator). Any other
        failure of the app lookup (5xx, 429, timeouts, resets, 401/403) is
        retried, never used as a reason to fall back: a transient error must
        not hand the app to whoever owns the token.
        """
        host = normalize_host(self._env.get("DATABRICKS_HOST"))
        if not host:
            raise OwnerLookupError("DATABRICKS_HOST is not set")
        app_name = self._env.get("DATABRICKS_APP_NAME")
        client_id = self._env.get("DATABRICKS_CLIENT_ID")
        client_secret = self._env.get("DATABRICKS_CLIENT_SECRET")
        token = self._token()
        reasons = []
        if app_name and client_id and client_secret:
            try:
                w = service_principal_client(host, client_id, client_secret, retry_timeout_s=self._retry_timeout_s)
                app = w.apps.get(app_name)
                creator = app.creator
                if app.url:
                    self._state = replace(self._state, app_url=app.url)  # the host browsers use (lib.access)
            except NotFound:
                creator = None
                reasons.append(f"the workspace has no app named '{app_name}'")
            except Exception as exc:
                raise OwnerLookupError(
                    f"could not read app '{app_name}' from the workspace ({describe_error(exc, host)}); "
                    "retrying (the token's user is not used as a fallback for a failed lookup)"
                ) from exc
            if creator:
                return self._with_token_user(self._resolved(creator, None, "app creator"), host, token)
            if not reasons:
                reasons.append(f"app '{app_name}' has no creator")
        else:
            reasons.append("no app name or service principal credentials")
        if not token:
            reasons.append("no DATABRICKS_TOKEN to fall back on")
            raise OwnerLookupError("; ".join(reasons))
        try:
            me = pat_client(host, token, retry_timeout_s=self._retry_timeout_s).current_user.me()
        except Exception as exc:
            reasons.append(f"token lookup failed ({describe_error(exc, host)})")
            raise OwnerLookupError("; ".join(reasons)) from exc
        if not me.user_name:
            reasons.append("the token's user has no user name")
            raise OwnerLookupError("; ".join(reasons))
        return replace(self._resolved(me.user_name, me.display_name, "token user"), token_user=me.user_name)

    def _with_token_user(self, state: OwnerState, host: str, token: str | None) -> OwnerState:
        """Note whose token the app holds when it is not the owner's: both must be told."""
        if not token:
            return state
        try:
            user = pat_client(host, token, retry_timeout_s=self._retry_timeout_s).current_user.me().user_name
        except Exception as exc:  # noqa: BLE001 - the token check in the sidebar reports token problems
            log.info("Could not tell whose DATABRICKS_TOKEN this is: %s", describe_error(exc, host))
            return state
        if user and user.casefold() != (state.owner or "").casefold():
            log.warning(
                "The DATABRICKS_TOKEN belongs to %s, but this app belongs to %s (its creator). "
                "Only %s gets in; agents and sync act as %s.", user, state.owner, state.owner, user,
            )
        return replace(state, token_user=user)

    def _resolved(self, email: str, display_name: str | None, source: str) -> OwnerState:
        return replace(
            self._state, owner=email, display_name=display_name, source=source,
            resolved_at=time.time(), error=None, public_error=None,
        )


class OwnerLookupError(Exception):
    """Every way of finding the owner failed; the text lists each reason."""


# What anyone may be told while the owner is unknown: no host, workspace id,
# URL or client id (those go to the log).
LOOKING = "looking up the app's owner in the workspace"
NOT_CONFIGURED = "the app's workspace settings are incomplete"
NO_ANSWER = "the workspace did not answer"
REFUSED = "the workspace refused the app's credentials"
UNSETTLED = "the workspace has not given a definite answer yet"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or len(seen) > 20:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__]


def public_reason(exc: BaseException) -> str:
    """A generic reason for a failed owner lookup, safe to show to anyone."""
    chain = list(_chain(exc))
    unreachable = (ConnectionError, TimeoutError, socket.timeout, requests.ConnectionError, requests.Timeout)
    if any(isinstance(e, unreachable) or "Invalid URL 'None'" in str(e) for e in chain):
        return NO_ANSWER
    if any(isinstance(e, (PermissionDenied, Unauthenticated)) for e in chain):
        return REFUSED
    if "DATABRICKS_HOST is not set" in str(exc) or "no DATABRICKS_TOKEN to fall back on" in str(exc):
        return NOT_CONFIGURED
    return UNSETTLED
