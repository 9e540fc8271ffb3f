"""The workspace token the agents use: where it comes from and whether it works.

Sources, first match wins: a token pasted in the sidebar (checked against
the workspace before it is accepted), the ``DATABRICKS_TOKEN`` secret
(whitespace and the trailing newline a secret scope often adds are removed),
or, after a restart, the token already in ``~/.databrickscfg`` for the same
host (the app wrote it there itself). The token lives in this process's
memory and in the agents' config files only; it is never logged, shown or
put into ``~/.coda`` (the sync log holds a one-way fingerprint at most).
Every message here is safe to display.

Besides asking the workspace itself, the store listens to the sync: the git
hook runs in a detached process, so the only way its "token refused" reaches
the sidebar is the record it leaves in the sync log. ``lib.runtime`` hands
the store the sync's reader for that (``lib.sync.refused_token``); this
package does not import ``lib.sync``, which itself builds on
``lib.workspace``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from databricks.sdk.errors import PermissionDenied, Unauthenticated

from lib import homefiles
from lib.homefiles import clean_token
from lib.settings import Settings, normalize_host
from lib.workspace.client import describe_error, pat_client

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 10
RECHECK_AFTER_S = 300

MISSING = "missing"  # no token at all
UNCHECKED = "unchecked"  # have one, not asked the workspace yet
OK = "ok"
REJECTED = "rejected"  # the workspace said 401/403: expired, revoked or mistyped
UNREACHABLE = "unreachable"  # could not ask (network, workspace down)

FIX_HINT = (
    "Create a new personal access token in the workspace (Settings > Developer > Access tokens) "
    "and paste it in the sidebar's token form."
)
SYNC_REFUSED = "The workspace refused this token when the last commit was synced (expired, revoked or mistyped)."


@dataclass(frozen=True)
class CheckOutcome:
    """The workspace's verdict on one token; ``message`` never contains the token."""

    state: str
    user: str | None = None
    message: str = ""


@dataclass(frozen=True)
class TokenStatus:
    """What the sidebar shows about the token in use (never the token itself)."""

    state: str
    source: str | None = None  # "sidebar" | "secret" | "saved"
    user: str | None = None
    message: str = ""
    checked_at: float | None = None

    @property
    def usable(self) -> bool:
        """Worth writing into configs: present and not known to be dead."""
        return self.state in (OK, UNCHECKED, UNREACHABLE)


def env_token(env: Mapping[str, str]) -> str | None:
    """The ``DATABRICKS_TOKEN`` secret, cleaned (``homefiles.clean_token``); None when unset or blank."""
    return clean_token(env.get("DATABRICKS_TOKEN"))


def _redact(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text


def check_token(host: str, token: str, *, timeout_s: int = CHECK_TIMEOUT_S) -> CheckOutcome:
    """Ask the workspace who owns ``token`` (SCIM Me); never raises."""
    try:
        me = pat_client(host, token, retry_timeout_s=timeout_s).current_user.me()
    except (Unauthenticated, PermissionDenied) as exc:
        log.info("Workspace rejected the token: %s", _redact(describe_error(exc), token))
        return CheckOutcome(REJECTED,
                            message=f"The workspace rejected the token (expired, revoked or mistyped). {FIX_HINT}")
    except Exception as exc:  # noqa: BLE001 - network, DNS, timeouts, unexpected answers
        reason = _redact(describe_error(exc), token)
        return CheckOutcome(UNREACHABLE, message=f"Could not check the token with {host}: {reason}")
    user = me.user_name or (me.emails[0].value if me.emails else None) or me.display_name
    return CheckOutcome(OK, user=user)


def saved_token(home: Path, host: str | None) -> str | None:
    """The ``[DEFAULT]`` token of ``~/.databrickscfg`` if it is for ``host``."""
    if not host:
        return None
    profile = homefiles.read_databrickscfg(home)
    if normalize_host(profile.host) != normalize_host(host):
        return None
    return profile.token


# ``home`` -> fingerprint of the token the latest sync saw refused, or None.
SyncRefusal = Callable[[Path], str | None]


class TokenStore:
    """The one token in use, its source and its last check; thread-safe.

    ``sync_refusal`` (``lib.sync.refused_token`` in the app) lets the store
    notice a token the detached sync saw refused; without it the store only
    learns from its own checks.
    """

    def __init__(self, check: Callable[..., CheckOutcome] = check_token,
                 sync_refusal: SyncRefusal | None = None) -> None:
        self._lock = threading.Lock()
        self._check = check
        self._sync_refusal = sync_refusal
        self._token: str | None = None
        self._status = TokenStatus(MISSING, message="No workspace token yet. " + FIX_HINT)
        self._checking = False
        self._sync_log_seen: tuple[str, int, int] | None = None  # (home, mtime_ns, size) last read

    def token(self) -> str | None:
        """The token to write into agent configs, or ``None``."""
        with self._lock:
            return self._token

    def status(self) -> TokenStatus:
        with self._lock:
            return self._status

    def load_initial(self, settings: Settings, env: Mapping[str, str] | None = None) -> TokenStatus:
        """Pick the boot-time token (secret, else saved config); a sidebar token is kept."""
        env = os.environ if env is None else env
        with self._lock:
            if self._status.source == "sidebar" and self._token:
                return self._status
        token, source = env_token(env), "secret"
        if token is None:
            token, source = saved_token(settings.home, settings.databricks_host), "saved"
        with self._lock:
            if token is None:
                self._token = None
                self._status = TokenStatus(MISSING, message="No workspace token yet. " + FIX_HINT)
            elif token != self._token:
                self._token = token
                self._status = TokenStatus(UNCHECKED, source=source)
            return self._status

    def verify(self, settings: Settings) -> TokenStatus:
        """Check the current token with the workspace now (blocks up to the timeout)."""
        token = self.token()
        if token is None:
            return self.status()
        if not settings.databricks_host:
            with self._lock:
                self._status = replace(self._status, state=UNCHECKED,
                                       message="No workspace host is configured, so the token cannot be checked.")
                return self._status
        outcome = self._check(settings.databricks_host, token)
        with self._lock:
            if self._token != token:  # replaced while we were asking
                return self._status
            self._status = replace(
                self._status,
                state=outcome.state,
                user=outcome.user or self._status.user,
                message=outcome.message,
                checked_at=time.time(),
            )
            if outcome.state == REJECTED:
                log.warning("The workspace token (%s) no longer works.", self._status.source)
            return self._status

    def verify_in_background(self, settings: Settings, max_age_s: float = RECHECK_AFTER_S) -> TokenStatus:
        """Re-check when the last check is older than ``max_age_s``; return the status at once.

        Pages call this on every run: a revoked or expired token shows up in
        the sidebar within minutes without any page waiting on the network,
        and at once when a sync saw it refused.
        """
        self._notice_sync(settings.home)
        with self._lock:
            status = self._status
            stale = status.checked_at is None or time.time() - status.checked_at > max_age_s
            if self._token is None or not stale or self._checking:
                return status
            self._checking = True

        def run() -> None:
            try:
                self.verify(settings)
            finally:
                with self._lock:
                    self._checking = False

        threading.Thread(target=run, name="coda-token-check", daemon=True).start()
        return status

    def submit(self, settings: Settings, raw: str) -> TokenStatus:
        """Accept a pasted token only if the workspace accepts it.

        Returns the outcome for the form; on failure the token in use stays
        as it was and the pasted one is forgotten.
        """
        token = clean_token(raw)
        if token is None:
            return TokenStatus(MISSING, message="The token field is empty.")
        if not settings.databricks_host:
            return TokenStatus(REJECTED,
                               message="No workspace host is configured, so a token cannot be checked or used.")
        outcome = self._check(settings.databricks_host, token)
        if outcome.state != OK:
            return TokenStatus(outcome.state, source="sidebar", message=outcome.message)
        with self._lock:
            self._token = token
            self._status = TokenStatus(OK, source="sidebar", user=outcome.user, checked_at=time.time())
            return self._status

    def report_failure(self, message: str, *, token_hash: str | None = None) -> None:
        """Another component (a sync push, a model call) saw the token rejected.

        With ``token_hash`` (``homefiles.token_fingerprint``) the report only
        counts when it is about the token in use, not one replaced since.
        """
        with self._lock:
            if self._token is None:
                return
            if token_hash is not None and token_hash != homefiles.token_fingerprint(self._token):
                return
            self._status = replace(self._status, state=REJECTED, message=f"{message} {FIX_HINT}",
                                   checked_at=time.time())
            source = self._status.source
        log.warning("The workspace token (%s) was refused: %s", source, message)

    def _notice_sync(self, home: Path) -> None:
        """Report the token in use as rejected when the latest sync that presented it was refused.

        Costs one ``stat`` of the sync log while it is unchanged; each new
        version of the log is read (its tail) once.
        """
        if self._sync_refusal is None:
            return
        try:
            st = homefiles.sync_records_path(home).stat()
        except OSError:
            return  # no sync has run yet
        seen = (str(home), st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._token is None or seen == self._sync_log_seen:
                return
            self._sync_log_seen = seen
        refused = self._sync_refusal(home)
        if refused is not None:
            self.report_failure(SYNC_REFUSED, token_hash=refused)

    def clear(self) -> None:
        """Forget the token (tests; "sign out")."""
        with self._lock:
            self._token = None
            self._status = TokenStatus(MISSING, message="No workspace token yet. " + FIX_HINT)
