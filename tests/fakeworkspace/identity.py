"""Who-am-I routes: the Apps API (owner = ``creator``), SCIM Me and the token API.

These are what the product's identity code reads: the owner of a deployed
app is ``creator`` of ``GET /api/2.0/apps/{DATABRICKS_APP_NAME}``, read with
the app's service principal; SCIM Me is the fallback with a user's PAT.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Dict, List

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .auth import identity_of
from .errors import ApiError, invalid_parameter, not_found
from .httputil import json_body
from .state import WorkspaceState


def app_json(state: WorkspaceState) -> Dict[str, Any]:
    """The App object as ``GET /api/2.0/apps/{name}`` returns it."""
    created = datetime(2025, 1, 1, tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")
    app_id = hashlib.sha256(state.app_name.encode()).hexdigest()
    sp = state.service_principal
    return {
        "name": state.app_name,
        "description": "",
        "id": f"{app_id[:8]}-{app_id[8:12]}-{app_id[12:16]}-{app_id[16:20]}-{app_id[20:32]}",
        "creator": state.app_creator,
        "updater": state.app_creator,
        "create_time": created,
        "update_time": created,
        "url": f"https://{state.app_name}-{state.workspace_id}.aws.databricksapps.com",
        "service_principal_client_id": state.client_id,
        "service_principal_id": int(sp.id),
        "service_principal_name": sp.display_name,
        "default_source_code_path": f"/Workspace/Users/{state.app_creator}/{state.app_name}",
        "app_status": {"state": "RUNNING", "message": "App has status: App is running"},
        "compute_status": {"state": "ACTIVE", "message": "App compute is active."},
        "compute_size": "MEDIUM",
    }


def identity_routes(state: WorkspaceState) -> List[Route]:
    """Apps, SCIM Me and token API routes over ``state``."""

    async def get_app(request: Request) -> Response:
        name = request.path_params["name"]
        if name != state.app_name or state.app_creator is None:
            raise not_found(f"App with name {name} does not exist or is deleted.")
        return JSONResponse(app_json(state))

    async def list_apps(request: Request) -> Response:
        return JSONResponse({"apps": [app_json(state)] if state.app_creator is not None else []})

    async def scim_me(request: Request) -> Response:
        return JSONResponse(identity_of(request).scim_me())

    async def token_create(request: Request) -> Response:
        body = await json_body(request)
        lifetime = body.get("lifetime_seconds")
        if lifetime is not None and not isinstance(lifetime, int):
            raise invalid_parameter("lifetime_seconds must be an integer")
        rec = state.create_pat(identity_of(request), lifetime, str(body.get("comment") or ""))
        return JSONResponse({"token_value": rec.value, "token_info": rec.token_info()})

    async def token_list(request: Request) -> Response:
        return JSONResponse({"token_infos": [r.token_info() for r in state.list_pats(identity_of(request))]})

    async def token_delete(request: Request) -> Response:
        body = await json_body(request)
        token_id = body.get("token_id")
        if not token_id:
            raise invalid_parameter("Missing required field: token_id")
        if not state.revoke_by_id(identity_of(request), str(token_id)):
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Token with ID {token_id} does not exist.")
        return JSONResponse({})

    return [
        Route("/api/2.0/apps", list_apps, methods=["GET"]),
        Route("/api/2.0/apps/{name}", get_app, methods=["GET"]),
        Route("/api/2.0/preview/scim/v2/Me", scim_me, methods=["GET"]),
        Route("/api/2.0/token/create", token_create, methods=["POST"]),
        Route("/api/2.0/token/list", token_list, methods=["GET"]),
        Route("/api/2.0/token/delete", token_delete, methods=["POST"]),
    ]
