"""The one error type the terminal routes turn into an HTTP answer."""

from __future__ import annotations


class RequestError(Exception):
    """A request that cannot be done; ``status`` is the HTTP answer, the text says why."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
