"""The one error type the terminal routes turn into an HTTP answer, and the session errors built on it."""

from __future__ import annotations


class RequestError(Exception):
    """A request that cannot be done; ``status`` is the HTTP answer, the text says why."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class SessionError(RequestError):
    """A request about sessions that cannot be done; ``status`` is the HTTP answer."""

    status = 400


class UnknownSession(SessionError):
    status = 404


class SessionCapReached(SessionError):
    status = 429


class InputTooLarge(SessionError):
    status = 413


class ProgramMissing(SessionError):
    """The agent's program is not installed where the session looks for it."""

    status = 409
