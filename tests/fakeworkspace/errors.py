"""Databricks-shaped error responses.

Every REST error of a real workspace has the body
``{"error_code": "<CODE>", "message": "<text>"}``; the databricks-sdk maps
``error_code`` (then the HTTP status) to its exception classes
(``NotFound``, ``PermissionDenied``, ``ResourceAlreadyExists`` ...). Handlers
raise :class:`ApiError` so each error is written exactly once, in that shape.
"""

from __future__ import annotations

from typing import Mapping, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    """An error the fake answers with, in the Databricks JSON shape."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """The JSON response a real workspace would send for this error."""
        return error_response(self.status, self.error_code, self.message, self.headers)


def error_response(
    status: int,
    error_code: str,
    message: str,
    headers: Optional[Mapping[str, str]] = None,
) -> Response:
    """Build ``{"error_code", "message"}`` with ``status`` (used by middleware too)."""
    return JSONResponse({"error_code": error_code, "message": message}, status_code=status, headers=dict(headers or {}))


def not_found(message: str) -> ApiError:
    """404 RESOURCE_DOES_NOT_EXIST, the workspace's answer for a missing object."""
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def invalid_parameter(message: str) -> ApiError:
    """400 INVALID_PARAMETER_VALUE, the answer for a malformed request field."""
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette exception handler turning :class:`ApiError` into its response."""
    assert isinstance(exc, ApiError)
    return exc.response()


async def not_found_handler(request: Request, exc: Exception) -> Response:
    """Unknown routes answer like the real API gateway does."""
    return error_response(404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.url.path}'")


async def method_not_allowed_handler(request: Request, exc: Exception) -> Response:
    """A known path with the wrong HTTP method."""
    return error_response(405, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.url.path}'")
