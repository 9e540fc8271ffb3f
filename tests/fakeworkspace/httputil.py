"""Small request-parsing helpers shared by the route modules."""

from __future__ import annotations

import json
from typing import Any, Dict

from starlette.requests import Request

from .errors import ApiError


async def json_body(request: Request) -> Dict[str, Any]:
    """The JSON object body, ``{}`` when empty; 400 MALFORMED_REQUEST otherwise."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError(
            400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request - expected a map"
        ) from None
    if not isinstance(data, dict):
        raise ApiError(400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request - expected a map")
    return data


def truthy(value: Any) -> bool:
    """Booleans arrive as JSON booleans, or as "true"/"false" in forms and queries."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() in ("true", "1", "yes")
