"""Sort failures into "try again", "give up on this file" and "stop the sync",
name their cause, and say each one in words a user can act on.

The SDK only retries some requests itself (not uploads, which are multipart),
so the engine needs its own view of what is transient (``classify``). The
sync page and ``~/.sync.log`` show ``explain()`` text, never a stack trace or
a token. ``cause_of`` is the machine-readable half: a record stores it as
``error_kind``, so the app can tell a refused token from a network blip
without parsing sentences.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from types import SimpleNamespace


def _sdk() -> SimpleNamespace:
    # Imported on first failure only: databricks-sdk takes seconds to import,
    # and a sync to the local mirror folder never needs it.
    import requests
    from databricks.sdk import errors as e

    return SimpleNamespace(requests=requests, e=e)


_TRANSIENT_CODES = (
    None,
    "",
    "TEMPORARILY_UNAVAILABLE",
    "INTERNAL_ERROR",
    "DEADLINE_EXCEEDED",
    "REQUEST_LIMIT_EXCEEDED",
    "RESOURCE_EXHAUSTED",
)


class Kind(Enum):
    TRANSIENT = "transient"  # retry with backoff
    FILE = "file"  # this one operation failed; the others may go on
    FATAL = "fatal"  # nothing else can succeed now: stop the sync


class Cause(StrEnum):
    """Why a sync failed, as stored in ``SyncRecord.error_kind`` (a JSON string)."""

    TOKEN_REJECTED = "token_rejected"  # 401, or 403 about the credential: the app shows it in the sidebar
    ACCESS_DENIED = "access_denied"  # 403 about the folder
    UNREACHABLE = "unreachable"  # connection failed, or the SDK's retry budget ran out
    THROTTLED = "throttled"  # 429 that did not let up
    SERVER_ERROR = "server_error"  # 5xx and friends
    NOT_FOUND = "not_found"
    REQUEST_REJECTED = "request_rejected"  # any other workspace error
    LOCAL_FILE = "local_file"  # reading the project's file failed
    DEADLINE = "deadline"  # the run's own wall-clock budget
    BUSY = "busy"  # another sync of the project held its lock too long
    UNEXPECTED = "unexpected"


class Retry(StrEnum):
    """What happens after a run failed for a given ``Cause`` (``lib.sync.retry`` acts on it)."""

    BACKOFF = "backoff"  # the workspace or the network: retried by itself, 1 s doubling to 5 min, until it works
    NEW_TOKEN = "new_token"  # the credential (or its rights): retried by itself once the token changes
    NONE = "none"  # something in the project itself: the next commit or Sync now tries again


_RETRY_BY_CAUSE = {
    Cause.UNREACHABLE: Retry.BACKOFF,
    Cause.THROTTLED: Retry.BACKOFF,
    Cause.SERVER_ERROR: Retry.BACKOFF,
    Cause.DEADLINE: Retry.BACKOFF,
    Cause.BUSY: Retry.BACKOFF,
    Cause.NOT_FOUND: Retry.BACKOFF,  # a folder deleted under a running sync: the next run recreates it
    Cause.UNEXPECTED: Retry.BACKOFF,  # a git command that met a lock, say; capped at one try per 5 min
    Cause.TOKEN_REJECTED: Retry.NEW_TOKEN,
    Cause.ACCESS_DENIED: Retry.NEW_TOKEN,
    Cause.REQUEST_REJECTED: Retry.NONE,
    Cause.LOCAL_FILE: Retry.NONE,
}


def retry_policy(cause: str | None) -> Retry:
    """How a failure with ``cause`` (a record's ``error_kind``) is retried; unknown or none: not at all."""
    try:
        return _RETRY_BY_CAUSE.get(Cause(cause), Retry.NONE) if cause else Retry.NONE
    except ValueError:
        return Retry.NONE


class SyncAborted(Exception):
    """Raised inside workers once another operation hit a fatal error."""


class SyncDeadline(Exception):
    """The run used up its wall-clock budget (``SyncOptions.deadline_s``)."""


def _is_token_problem(exc: BaseException) -> bool:
    e = _sdk().e
    if isinstance(exc, e.Unauthenticated):
        return True
    if isinstance(exc, e.PermissionDenied):
        text = str(exc).lower()
        return "token" in text or "credential" in text or "authenticat" in text
    return False


def classify(exc: BaseException) -> Kind:
    if isinstance(exc, (SyncAborted, SyncDeadline)):
        return Kind.FATAL
    sdk = _sdk()
    e, requests = sdk.e, sdk.requests
    if _is_token_problem(exc):
        return Kind.FATAL
    if isinstance(exc, TimeoutError):
        # The SDK already retried this request for its whole budget.
        return Kind.FATAL
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return Kind.TRANSIENT
    if isinstance(exc, (e.TooManyRequests, e.InternalError, e.TemporarilyUnavailable, e.DeadlineExceeded)):
        return Kind.TRANSIENT
    if type(exc) is e.DatabricksError and exc.error_code in _TRANSIENT_CODES:
        # An HTTP status the SDK does not map (502 Bad Gateway and friends) has no code.
        return Kind.TRANSIENT
    if isinstance(exc, OSError):
        return Kind.FILE  # a local file vanished or is unreadable
    return Kind.FILE


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _root(exc: BaseException) -> BaseException:
    # SDK TimeoutError wraps the last real error; explain that one.
    seen = 0
    while isinstance(exc, TimeoutError) and exc.__cause__ is not None and seen < 5:
        exc = exc.__cause__
        seen += 1
    return exc


def cause_of(exc: BaseException) -> Cause:
    """What kind of failure ``exc`` is (the SDK's wrapping ``TimeoutError`` looked through)."""
    root = _root(exc)
    if isinstance(root, SyncDeadline):
        return Cause.DEADLINE
    sdk = _sdk()
    e, requests = sdk.e, sdk.requests
    if _is_token_problem(root):
        return Cause.TOKEN_REJECTED
    if isinstance(root, e.PermissionDenied):
        return Cause.ACCESS_DENIED
    if isinstance(root, (requests.ConnectionError, requests.Timeout)) or (
        isinstance(exc, TimeoutError) and root is exc
    ):
        return Cause.UNREACHABLE
    if isinstance(root, e.TooManyRequests):
        return Cause.THROTTLED
    if isinstance(root, (e.InternalError, e.TemporarilyUnavailable, e.DeadlineExceeded)) or (
        type(root) is e.DatabricksError and root.error_code in _TRANSIENT_CODES
    ):
        return Cause.SERVER_ERROR
    if isinstance(root, e.NotFound):
        return Cause.NOT_FOUND
    if isinstance(root, e.DatabricksError):
        return Cause.REQUEST_REJECTED
    if isinstance(root, OSError):
        return Cause.LOCAL_FILE
    return Cause.UNEXPECTED


def explain(exc: BaseException, *, host: str | None = None) -> str:
    """One or two sentences: what went wrong and what to do about it."""
    root = _root(exc)
    where = host or "the workspace"
    cause = cause_of(exc)
    if cause is Cause.DEADLINE:
        return (
            f"The sync took longer than {root} and stopped. "
            "Nothing is lost: it continues by itself where it stopped (or press Sync now)."
        )
    if cause is Cause.TOKEN_REJECTED:
        return (
            "The workspace refused the token: set a new token in the sidebar, then press Sync now "
            "(the sync also retries by itself once the token changes)."
        )
    if cause is Cause.ACCESS_DENIED:
        return (
            f"The workspace denied access ({_first_line(root)}): "
            "check that the folder is yours, then press Sync now."
        )
    if cause is Cause.UNREACHABLE:
        return (
            f"Could not reach {where}: it may be down or unreachable from here. "
            "Nothing is lost: the sync retries by itself until it gets through (or press Sync now)."
        )
    if cause is Cause.THROTTLED:
        return (
            "The workspace is limiting how fast we may upload (HTTP 429) and did not let up in time. "
            "Nothing is lost: the sync retries by itself (or press Sync now in a minute)."
        )
    if cause is Cause.SERVER_ERROR:
        return (
            f"The workspace had a server error ({_first_line(root)}). "
            "Nothing is lost: the sync retries by itself (or press Sync now in a little while)."
        )
    if cause is Cause.BUSY:
        return "Another sync of this project ran too long; this one retries by itself (or press Sync now)."
    if cause is Cause.NOT_FOUND:
        return f"The workspace folder is missing ({_first_line(root)}): press Sync now to create it again."
    if cause is Cause.REQUEST_REJECTED:
        return f"The workspace rejected a request: {_first_line(root)}."
    if cause is Cause.LOCAL_FILE:
        return f"Could not read a local file: {_first_line(root)}."
    return f"Sync failed unexpectedly: {type(root).__name__}: {_first_line(root)}."
