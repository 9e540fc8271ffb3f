"""Sort failures into "try again", "give up on this file" and "stop the sync",
and say each one in words a user can act on.

The SDK only retries some requests itself (not uploads, which are multipart),
so the engine needs its own view of what is transient. The sync page and
``~/.sync.log`` show ``explain()`` text, never a stack trace or a token.
"""

from __future__ import annotations

from enum import Enum
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


def explain(exc: BaseException, *, host: str | None = None) -> str:
    """One or two sentences: what went wrong and what to do about it."""
    root = _root(exc)
    where = host or "the workspace"
    sdk = _sdk()
    e, requests = sdk.e, sdk.requests
    if isinstance(root, SyncDeadline):
        return (
            f"The sync took longer than {root} and stopped. "
            "Nothing is lost: the next commit or Sync now continues where it stopped."
        )
    if _is_token_problem(root):
        return "The workspace refused the token: set a new token in the sidebar, then press Sync now."
    if isinstance(root, e.PermissionDenied):
        return (
            f"The workspace denied access ({_first_line(root)}): "
            "check that the folder is yours, then press Sync now."
        )
    if isinstance(root, (requests.ConnectionError, requests.Timeout)) or (
        isinstance(exc, TimeoutError) and root is exc
    ):
        return (
            f"Could not reach {where}: it may be down or unreachable from here. "
            "Nothing is lost: the next commit or Sync now will finish the upload."
        )
    if isinstance(root, e.TooManyRequests):
        return (
            "The workspace is limiting how fast we may upload (HTTP 429) and did not let up in time. "
            "Nothing is lost: press Sync now in a minute."
        )
    if isinstance(root, (e.InternalError, e.TemporarilyUnavailable, e.DeadlineExceeded)) or (
        type(root) is e.DatabricksError and root.error_code in _TRANSIENT_CODES
    ):
        return (
            f"The workspace had a server error ({_first_line(root)}). "
            "Nothing is lost: press Sync now in a little while."
        )
    if isinstance(root, e.NotFound):
        return f"The workspace folder is missing ({_first_line(root)}): press Sync now to create it again."
    if isinstance(root, e.DatabricksError):
        return f"The workspace rejected a request: {_first_line(root)}."
    if isinstance(root, OSError):
        return f"Could not read a local file: {_first_line(root)}."
    return f"Sync failed unexpectedly: {type(root).__name__}: {_first_line(root)}."
