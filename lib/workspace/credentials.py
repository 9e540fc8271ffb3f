"""Workspace credentials for model calls: which one is in use, and fresh headers per request.

The databricks-sdk's unified auth does the work (``Config`` + ``authenticate()``,
which refreshes OAuth tokens by itself); this module only decides which
credential to hand it, so that exactly one source is used and the sidebar can
say which. Sources, the first that applies wins:

1. **the workspace token** in use (``lib.workspace.tokens``: pasted in the
   sidebar, the ``DATABRICKS_TOKEN`` secret, or the one the app saved in
   ``~/.databrickscfg``), for ``DATABRICKS_HOST``, unless it is known to be
   refused;
2. **the app's service principal** (``DATABRICKS_CLIENT_ID`` /
   ``DATABRICKS_CLIENT_SECRET``, OAuth M2M; the SDK renews its short-lived
   tokens);
3. **a Databricks CLI profile** in ``~/.databrickscfg`` (or
   ``DATABRICKS_CONFIG_FILE``): ``DATABRICKS_CONFIG_PROFILE`` when set, else
   the profile for ``DATABRICKS_HOST``, else the file's default profile
   (read and chosen by ``lib.workspace.profiles``). A
   personal access token, OAuth M2M, or ``databricks auth login`` (U2M: the
   SDK asks the ``databricks`` CLI for a fresh token).

A ``Config`` is built once per source (building one may ask the workspace for
its OIDC endpoints) and asked for headers on every request. When the
workspace refuses a credential (``refused``): a refused token is reported to
the token store, so the sidebar says so at once, and the next source serves
the following calls; an OAuth source is rebuilt, which fetches a new token.

Secrets never leave this module except as request headers: not in messages,
logs, ``repr`` or the status. Everything here blocks (the SDK is
synchronous): callers on an event loop run it in a thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from databricks.sdk.config import Config

from lib.homefiles import token_fingerprint
from lib.settings import Settings, normalize_host
from lib.workspace.client import DEFAULT_RETRY_TIMEOUT_S, describe_error
from lib.workspace.profiles import choose_profile, config_file, mtime
from lib.workspace.tokens import OK as TOKEN_WORKS
from lib.workspace.tokens import TokenStore, env_token

log = logging.getLogger(__name__)

TOKEN = "token"
SERVICE_PRINCIPAL = "service principal"
PROFILE = "profile"

# What the status says about the credential in use.
UNUSED = "unused"  # not asked for yet
WORKS = "works"  # the workspace accepted its last call
REFUSED = "refused"  # the workspace said 401/403 to it
FAILED = "failed"  # could not get a token (the token endpoint, the CLI, the network)
NONE = "none"  # no credential at all

_TOKEN_SOURCES = {"sidebar": "pasted in the sidebar", "secret": "the DATABRICKS_TOKEN secret",
                  "saved": "saved in ~/.databrickscfg", "env": "DATABRICKS_TOKEN in the environment"}


class NoCredentials(Exception):
    """No credential applies; the message says the one thing to do."""


class CredentialError(Exception):
    """A credential exists but gave no token; the message is safe to show."""


@dataclass(frozen=True)
class Candidate:
    """One source, as chosen now: what it is, for which host, and how to build its ``Config``."""

    kind: str  # TOKEN | SERVICE_PRINCIPAL | PROFILE
    label: str  # for people: "the app's service principal (OAuth M2M)"
    host: str
    cache_key: tuple[str, ...]  # identifies the credential without holding it
    config_kwargs: dict[str, Any] = field(repr=False, compare=False)
    token_hash: str | None = None  # fingerprint of a static token (PAT), to report refusals


@dataclass(frozen=True)
class Resolved:
    """A built credential: the candidate and the SDK ``Config`` that gives its headers."""

    candidate: Candidate
    config: Config = field(repr=False, compare=False)

    @property
    def host(self) -> str:
        return normalize_host(self.config.host) or self.candidate.host


@dataclass(frozen=True)
class CredentialStatus:
    """What the sidebar shows: which credential model calls use, and how it fared."""

    state: str  # UNUSED | WORKS | REFUSED | FAILED | NONE
    kind: str | None = None
    label: str = ""
    host: str | None = None
    message: str = ""
    at: float | None = None


class Credentials:
    """Chooses the credential for model calls and gives fresh headers for it; thread-safe."""

    def __init__(self, tokens: TokenStore, settings: Callable[[], Settings], env: Mapping[str, str] | None = None,
                 *, retry_timeout_s: int = DEFAULT_RETRY_TIMEOUT_S) -> None:
        self._tokens = tokens
        self._settings = settings
        self._env = env
        self._retry_timeout_s = retry_timeout_s
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._built: tuple[tuple[str, ...], Config] | None = None
        self._refused_tokens: dict[str, float] = {}  # token fingerprint -> when the workspace refused it
        self._status = CredentialStatus(UNUSED)

    @property
    def env(self) -> Mapping[str, str]:
        return os.environ if self._env is None else self._env

    # ------------------------------------------------------------ choosing (no network)

    def candidate(self, settings: Settings | None = None) -> Candidate | None:
        """The source that applies now, or ``None``; cheap (reads memory and one small file).
        ``settings``: the current settings when the caller has them already."""
        settings = settings or self._settings()
        env = self.env
        host = settings.databricks_host
        common = {"retry_timeout_seconds": self._retry_timeout_s,
                  "http_timeout_seconds": max(5, self._retry_timeout_s)}
        token, source = self._token()
        if token and host and not self._is_refused(token_fingerprint(token)):
            fingerprint = token_fingerprint(token)
            return Candidate(TOKEN, f"your workspace token ({_TOKEN_SOURCES.get(source or '', source)})", host,
                             (TOKEN, host, fingerprint),
                             {"host": host, "token": token, "auth_type": "pat", **common}, fingerprint)
        client_id = (env.get("DATABRICKS_CLIENT_ID") or "").strip()
        client_secret = (env.get("DATABRICKS_CLIENT_SECRET") or "").strip()
        if client_id and client_secret and host:
            return Candidate(SERVICE_PRINCIPAL, "the app's service principal (OAuth M2M)", host,
                             (SERVICE_PRINCIPAL, host, client_id),
                             {"host": host, "client_id": client_id, "client_secret": client_secret,
                              "auth_type": "oauth-m2m", **common})
        path = config_file(settings.home, env)
        profile = choose_profile(path, env, settings.databricks_host)
        if profile is not None and profile.host:
            # Every value explicitly: the SDK would otherwise let DATABRICKS_* variables win over the file.
            kwargs: dict[str, Any] = {k: v for k, v in profile.values.items() if k in _CONFIG_ATTRIBUTES}
            kwargs.update(host=profile.host, profile=profile.name, config_file=str(path), **common)
            if profile.auth_type:
                kwargs["auth_type"] = profile.auth_type
            fingerprint = token_fingerprint(profile.token) if profile.token else None
            if fingerprint is not None and self._is_refused(fingerprint):
                return None
            stamp = mtime(path)
            return Candidate(PROFILE, f"Databricks CLI profile '{profile.name}' ({profile.auth_type or 'default auth'})"
                             f" in {_tilde(path, settings.home)}", profile.host,
                             (PROFILE, str(path), profile.name, stamp, fingerprint or ""), kwargs, fingerprint)
        return None

    def problem(self) -> str | None:
        """Why model calls cannot be made, with the one thing to do; ``None`` when a credential applies."""
        if self.candidate() is not None:
            return None
        settings = self._settings()
        host = settings.databricks_host
        token, _ = self._token()
        if token and host and self._is_refused(token_fingerprint(token)):
            return ("not configured: the workspace refused the token. Paste a new personal access token in the "
                    "sidebar, or run `databricks auth login --host " + host + "` on this machine")
        where = host or "https://<your-workspace>"
        if host:
            return (f"not configured: no workspace credentials. Run `databricks auth login --host {where}` on this "
                    "machine, or paste a personal access token in the sidebar")
        return (f"not configured: no workspace credentials. Run `databricks auth login --host {where}` on this "
                "machine, or set DATABRICKS_HOST and DATABRICKS_TOKEN before starting the app")

    # ------------------------------------------------------------ using (may block on the network)

    def resolve(self) -> Resolved:
        """The credential to use now, built (cached per source). Raises ``NoCredentials``/``CredentialError``."""
        candidate = self.candidate()
        if candidate is None:
            message = self.problem() or "not configured: no workspace credentials"
            self._set_status(CredentialStatus(NONE, message=message, at=time.time()))
            raise NoCredentials(message)
        with self._build_lock:
            built = self._built
            if built is not None and built[0] == candidate.cache_key:
                return Resolved(candidate, built[1])
            try:
                config = Config(**candidate.config_kwargs)
            except Exception as exc:  # noqa: BLE001 - the SDK raises ValueError and network errors alike
                message = f"{candidate.label} could not be used: {self._safe(describe_error(exc, candidate.host))}"
                self._set_status(CredentialStatus(FAILED, candidate.kind, candidate.label, candidate.host,
                                                  message, time.time()))
                raise CredentialError(message) from None
            self._built = (candidate.cache_key, config)
        with self._lock:
            if self._status.label != candidate.label:
                self._status = CredentialStatus(UNUSED, candidate.kind, candidate.label, candidate.host)
        return Resolved(candidate, config)

    def built(self, settings: Settings | None = None) -> Resolved | None:
        """The credential to use now if its ``Config`` is already built (no network), else ``None``."""
        candidate = self.candidate(settings)
        built = self._built
        if candidate is None or built is None or built[0] != candidate.cache_key:
            return None
        return Resolved(candidate, built[1])

    @staticmethod
    def static(resolved: Resolved) -> bool:
        """True when ``headers`` cannot block: a personal access token's headers never change."""
        return resolved.config.auth_type == "pat"

    def headers(self, resolved: Resolved) -> dict[str, str]:
        """Fresh auth headers for ``resolved`` (the SDK renews OAuth tokens). Raises ``CredentialError``."""
        try:
            return dict(resolved.config.authenticate())
        except Exception as exc:  # noqa: BLE001 - token endpoint, CLI or network failures
            label = resolved.candidate.label
            message = f"{label} gave no token: {self._safe(describe_error(exc, resolved.host))}"
            self._set_status(CredentialStatus(FAILED, resolved.candidate.kind, label, resolved.host, message,
                                              time.time()))
            self.forget(resolved)
            raise CredentialError(message) from None

    def worked(self, resolved: Resolved) -> None:
        """The workspace accepted a call made with ``resolved``."""
        status = self._status
        if status.state != WORKS or status.label != resolved.candidate.label:
            self._set_status(CredentialStatus(WORKS, resolved.candidate.kind, resolved.candidate.label,
                                              resolved.host, "", time.time()))

    def refused(self, resolved: Resolved, detail: str = "") -> None:
        """The workspace refused ``resolved`` (401/403 for its credential): stop using it as it is.

        A static token is never tried again (and the token store hears of
        it, so the sidebar says so); an OAuth credential is rebuilt on the
        next call, which fetches a new token.
        """
        candidate = resolved.candidate
        reason = f" ({self._safe(detail)})" if detail else ""
        if candidate.token_hash is not None:
            with self._lock:
                self._refused_tokens[candidate.token_hash] = time.time()
            if candidate.kind == TOKEN:
                self._tokens.report_failure("The workspace refused the token on a model call (expired or revoked).",
                                            token_hash=candidate.token_hash)
            message = f"The workspace refused {candidate.label}{reason}."
        else:
            message = f"The workspace refused a token of {candidate.label}{reason}; a new one is fetched."
        log.warning("%s", message)
        self._set_status(CredentialStatus(REFUSED, candidate.kind, candidate.label, resolved.host, message,
                                          time.time()))
        self.forget(resolved)

    def forget(self, resolved: Resolved) -> None:
        """Drop the built ``Config`` of ``resolved`` so the next call builds a fresh one."""
        with self._build_lock:
            if self._built is not None and self._built[0] == resolved.candidate.cache_key:
                self._built = None

    def status(self) -> CredentialStatus:
        """The credential in use (or the one that would be) and how its last use went."""
        with self._lock:
            status = self._status
        if status.state in (UNUSED, NONE):
            candidate = self.candidate()
            if candidate is None:
                return CredentialStatus(NONE, message=self.problem() or "", at=status.at)
            if status.label != candidate.label:
                return CredentialStatus(UNUSED, candidate.kind, candidate.label, candidate.host)
        return status

    # ------------------------------------------------------------ helpers

    def _is_refused(self, fingerprint: str) -> bool:
        """Refused on a model call, and the token store has not seen it work since."""
        refused_at = self._refused_tokens.get(fingerprint)
        if refused_at is None:
            return False
        store = self._tokens.status()
        token = self._tokens.token()
        if (token and token_fingerprint(token) == fingerprint and store.state == TOKEN_WORKS
                and (store.checked_at or 0) > refused_at):
            with self._lock:
                self._refused_tokens.pop(fingerprint, None)
            return False
        return True

    def _token(self) -> tuple[str | None, str | None]:
        """The token store's token when it may work, else the environment's secret."""
        store = self._tokens.status()
        token = self._tokens.token()
        if token:
            return (token, store.source) if store.usable else (None, None)
        secret = env_token(self.env)
        return (secret, "env") if secret else (None, None)

    def _set_status(self, status: CredentialStatus) -> None:
        with self._lock:
            self._status = status

    def _safe(self, text: str) -> str:
        """``text`` without any secret this module knows of."""
        candidate_secrets = [self._tokens.token(), env_token(self.env),
                             (self.env.get("DATABRICKS_CLIENT_SECRET") or "").strip() or None]
        for secret in candidate_secrets:
            if secret:
                text = text.replace(secret, "[secret]")
        return text


_CONFIG_ATTRIBUTES = {attr.name for attr in Config.attributes()}


def _tilde(path: Path, home: Path) -> str:
    try:
        return "~/" + str(path.relative_to(home))
    except ValueError:
        return str(path)
