"""Routes of the Workspace API (``/api/2.0/workspace/*``) over :class:`WorkspaceTree`.

``w.workspace.upload()`` in databricks-sdk 0.162 posts
``multipart/form-data`` to ``/api/2.0/workspace/import`` (form fields
``path``, ``format``, ``language``, ``overwrite="true"`` and a file part
named ``content``), while ``w.workspace.import_()`` posts JSON with base64
``content``; both are accepted. ``w.workspace.download()`` calls
``GET /api/2.0/workspace/export?direct_download=true`` and reads raw bytes.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Dict, List, Optional

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import ApiError, invalid_parameter
from .httputil import json_body, truthy
from .workspace_tree import WorkspaceTree, canonical, display


def workspace_routes(tree: WorkspaceTree) -> List[Route]:
    """Starlette routes serving ``tree``."""

    async def get_status(request: Request) -> Response:
        path = request.query_params.get("path")
        canon, prefixed = canonical(path)
        node = tree.get(path)  # type: ignore[arg-type]
        return JSONResponse(node.info(display(node.path, prefixed)))

    async def list_(request: Request) -> Response:
        path = request.query_params.get("path")
        _, prefixed = canonical(path)
        nodes = tree.list(path)  # type: ignore[arg-type]
        after = request.query_params.get("notebooks_modified_after")
        if after:
            nodes = [n for n in nodes if n.object_type != "NOTEBOOK" or n.modified_at > int(after)]
        if not nodes:
            return JSONResponse({})
        return JSONResponse({"objects": [n.info(display(n.path, prefixed)) for n in nodes]})

    async def mkdirs(request: Request) -> Response:
        body = await json_body(request)
        tree.mkdirs(body.get("path"))  # type: ignore[arg-type]
        return JSONResponse({})

    async def delete(request: Request) -> Response:
        body = await json_body(request)
        tree.delete(body.get("path"), recursive=truthy(body.get("recursive")))  # type: ignore[arg-type]
        return JSONResponse({})

    async def import_(request: Request) -> Response:
        ctype = request.headers.get("content-type", "")
        fields: Dict[str, Any]
        content: Optional[bytes]
        if ctype.startswith("multipart/form-data"):
            form = await request.form(max_part_size=64 * 1024 * 1024)
            fields = {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
            part = form.get("content")
            if isinstance(part, UploadFile):
                content = await part.read()
            elif isinstance(part, str):
                content = part.encode("utf-8")
            else:
                content = None
        else:
            fields = await json_body(request)
            raw = fields.get("content")
            if raw is None:
                content = None
            else:
                try:
                    content = base64.b64decode(str(raw), validate=True)
                except (binascii.Error, ValueError):
                    raise invalid_parameter("The content must be base64 encoded.") from None
        if content is None:
            raise invalid_parameter("Missing required field: content")
        tree.import_(
            fields.get("path"),  # type: ignore[arg-type]
            content,
            format=fields.get("format"),
            language=fields.get("language"),
            overwrite=truthy(fields.get("overwrite")),
        )
        return JSONResponse({})

    async def export(request: Request) -> Response:
        q = request.query_params
        data, file_type = tree.export(q.get("path"), q.get("format"))  # type: ignore[arg-type]
        if truthy(q.get("direct_download")):
            return Response(data, media_type="application/octet-stream")
        return JSONResponse({"content": base64.b64encode(data).decode("ascii"), "file_type": file_type})

    return [
        Route("/api/2.0/workspace/get-status", get_status, methods=["GET"]),
        Route("/api/2.0/workspace/list", list_, methods=["GET"]),
        Route("/api/2.0/workspace/mkdirs", mkdirs, methods=["POST"]),
        Route("/api/2.0/workspace/delete", delete, methods=["POST"]),
        Route("/api/2.0/workspace/import", import_, methods=["POST"]),
        Route("/api/2.0/workspace/export", export, methods=["GET"]),
    ]


__all__ = ["workspace_routes", "ApiError"]
