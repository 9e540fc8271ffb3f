"""The one authorization decision: may this request reach the app, and as whom?

Two pure functions, applied by the middleware to every page, route and
WebSocket before anything runs: ``check_host`` (is the request addressed to
one of the app's own names? DNS rebinding) and ``decide`` (is the signed-in
user the owner?). ``ui.py`` calls ``decide`` again as a second lock. Nothing
else in the code base compares users. Locally there is a single user and
everyone who can reach the (loopback) port under an allowed name is that user.

Headers are looked up by name whatever their case, with every value of a
repeated header: pass Starlette's ``Headers`` (the middleware) or
``st.context.headers`` (the script) as they are; any other mapping is read as
HTTP headers too (one value per name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers

from lib.access.owner import OwnerState
from lib.settings import host_name

# Who the Databricks Apps proxy says is signed in. The email is the identity;
# the others, where present, must name the same person.
EMAIL_HEADER = "x-forwarded-email"
USERNAME_HEADER = "x-forwarded-preferred-username"
USER_HEADER = "x-forwarded-user"
IDENTITY_HEADERS = (EMAIL_HEADER, USERNAME_HEADER, USER_HEADER)

# Always allowed: a browser on this machine. Names a DNS-rebinding page cannot own.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200
    title: str = ""
    message: str = ""
    user: str | None = None


def _headers(headers: Mapping[str, str] | Any) -> Headers:
    """Starlette ``Headers`` (case-insensitive, every value of a repeated header kept)."""
    if isinstance(headers, Headers):
        return headers
    get_all = getattr(headers, "get_all", None)  # st.context.headers keeps repeated headers
    pairs = [(k, v) for k in headers for v in get_all(k)] if callable(get_all) else list(headers.items())
    return Headers(raw=[(str(k).lower().encode("latin-1", "replace"), str(v).encode("latin-1", "replace"))
                        for k, v in pairs])


def _values(headers: Headers, name: str) -> list[str]:
    """Every non-empty value of ``name``, a comma-separated value counting as several."""
    return [part.strip() for value in headers.getlist(name) for part in value.split(",") if part.strip()]


def _looks_like_email(value: str) -> bool:
    """``X-Forwarded-User`` is an opaque id on Databricks Apps (``<user id>@<workspace id>``); only an
    email-shaped value (a dot in the domain) can be compared with the email."""
    local, at, domain = value.rpartition("@")
    return bool(local and at and "." in domain)


def _identity(headers: Headers) -> tuple[str | None, Decision | None]:
    """(the signed-in user, or ``None``; a refusal when the identity headers are ambiguous)."""
    values = {name: _values(headers, name) for name in IDENTITY_HEADERS}
    repeated = [name for name, found in values.items() if len(found) > 1]
    if repeated:
        return None, Decision(False, 400, "Bad Request",
                              f"This request names more than one user ({', '.join(repeated)} repeated); refused.")
    email = (values[EMAIL_HEADER] or [None])[0]
    username = (values[USERNAME_HEADER] or [None])[0]
    user_id = (values[USER_HEADER] or [None])[0]
    comparable = [v for v in (username, user_id if user_id and _looks_like_email(user_id) else None) if v]
    user = email or username
    if user and any(v.casefold() != user.casefold() for v in comparable):
        return None, Decision(False, 400, "Bad Request",
                              "The identity headers of this request name different users; refused.")
    return user, None


def request_user(headers: Mapping[str, str] | Any) -> str | None:
    """The signed-in user as the Apps proxy tells us (``None`` when absent or ambiguous)."""
    return _identity(_headers(headers))[0]


def decide(owner: OwnerState, headers: Mapping[str, str] | Any) -> Decision:
    """May this request's user use the app? Refuses ambiguous identities in every mode."""
    headers = _headers(headers)
    user, refusal = _identity(headers)
    if refusal is not None:
        return refusal
    if not owner.on_apps:
        return Decision(True, user=user)
    if not owner.resolved:
        # Everyone is a stranger until the owner is known: a generic reason only.
        # The details (host, ids, URLs) are in the log.
        return Decision(
            False, 503, "Not ready",
            f"Owner not resolved yet: {owner.public_error or 'still looking'}. "
            "Access stays closed until the workspace answers; this page retries by itself. "
            "The details are in the app's log.",
        )
    if user is None:
        return Decision(False, 403, "Forbidden", "No signed-in user came with this request.")
    if user.casefold() != (owner.owner or "").casefold():
        message = f"This app belongs to {owner.owner}. You are signed in as {user}."
        if owner.token_mismatch and owner.token_user and user.casefold() == owner.token_user.casefold():
            message = f"{message} {owner.token_mismatch}"
        return Decision(False, 403, "Forbidden", message, user)
    return Decision(True, user=user)


def allowed_host_names(bind_address: str | None, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names the app answers to: the loopback names, its bind address and ``extra``
    (``CODA_ALLOWED_HOSTS``)."""
    names = set(LOOPBACK_NAMES) | {n for n in extra if n}
    bound = host_name(bind_address) or host_name(f"[{bind_address}]")
    if bound:
        names.add(bound)
    return frozenset(names)


def check_host(owner: OwnerState, headers: Mapping[str, str] | Any, allowed: frozenset[str]) -> Decision:
    """Is the request addressed to one of the app's own names? (DNS rebinding.)

    A page on ``rebind.evil.example`` whose name an attacker points at
    127.0.0.1 talks to the app as same-origin, with ``Host:
    rebind.evil.example``: every name in ``Host`` and ``X-Forwarded-Host``
    must be one of ``allowed``. On Databricks Apps the proxy puts the name
    the browser asked for in ``X-Forwarded-Host`` (its own upstream ``Host``
    is not the browser's and is not checked then): it must be the app's own
    URL (``OwnerState.app_url``, read with the owner) or an allowed name.
    While the app's URL is not known (not looked up yet, or the owner came
    from the token), the proxy's ``X-Forwarded-Host`` is taken as it is: only
    the platform's proxy can reach an app's port.
    """
    headers = _headers(headers)
    forwarded = _values(headers, "x-forwarded-host")
    if len(forwarded) > 1:
        return Decision(False, 400, "Bad Request", "This request names more than one host; refused.")
    checked: list[tuple[str, frozenset[str] | None]] = []
    app_host = owner.app_host if owner.on_apps else None
    if app_host:
        allowed = allowed | {app_host}
    if owner.on_apps and forwarded:
        checked.append((forwarded[0], allowed if app_host else None))
    else:
        hosts = headers.getlist("host")
        if len(hosts) != 1:
            return Decision(False, 400, "Bad Request", "This request has no single Host header; refused.")
        checked += [(hosts[0], allowed)] + [(name, allowed) for name in forwarded]
    for value, names in checked:
        name = host_name(value)
        if name is None or (names is not None and name not in names):
            shown = value.strip()[:100]
            return Decision(
                False, 400, "Bad Request",
                f"This app does not answer to the name '{shown}'. Open it by one of its own names "
                f"(e.g. 127.0.0.1), or add the name to CODA_ALLOWED_HOSTS and restart the app.",
            )
    return Decision(True)


def request_host(headers: Mapping[str, str] | Any) -> str:
    """The host (with port) the browser asked for: ``X-Forwarded-Host`` behind a proxy, else ``Host``."""
    headers = _headers(headers)
    return (headers.get("x-forwarded-host") or headers.get("host") or "").split(",")[0].strip()


def same_origin(headers: Mapping[str, str] | Any) -> bool:
    """True unless a browser says the request comes from another site.

    The Apps platform turns Streamlit's XSRF protection off, and our routes
    never had Streamlit's WebSocket origin check, so state-changing requests
    compare ``Origin`` with the host the browser asked for. No ``Origin`` at
    all means a non-browser client, which cannot be a cross-site forgery.
    """
    headers = _headers(headers)
    origins = headers.getlist("origin")
    if not origins:
        return True
    if len(origins) > 1:
        return False
    host = request_host(headers)
    try:
        origin_host = urlsplit(origins[0]).netloc
    except ValueError:
        return False
    return bool(host) and origin_host.lower() == host.lower()
