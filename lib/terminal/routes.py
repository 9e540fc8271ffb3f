"""HTTP and WebSocket routes served next to Streamlit on the same port.

Authorization and the Origin check happen earlier, in ``lib.access.middleware``;
these handlers only translate between HTTP and the session registry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from lib import __version__
from lib.runtime import Runtime
from lib.settings import base_url_path, load_settings
from lib.terminal import protocol
from lib.terminal.errors import RequestError
from lib.terminal.session import InputTooLarge, SessionError
from lib.terminal.uploads import save_upload
from lib.terminal.viewers import ClientGone, ClientOverflow, Exited

log = logging.getLogger(__name__)


async def request_error(request: Request, exc: Exception) -> JSONResponse:
    """Every refused API request answers JSON ``{"error": "..."}`` with the error's status."""
    assert isinstance(exc, RequestError)
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


EXCEPTION_HANDLERS = {RequestError: request_error}


async def _json_object(request: Request, example: str) -> dict[str, Any]:
    try:
        body: Any = await request.json()
    except ValueError:
        raise RequestError(f"the request body must be JSON like {example}") from None
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object like {example}")
    return body


def build_routes(rt: Runtime) -> list[BaseRoute]:
    """The app's own routes, bound to the runtime's services."""
    sessions = rt.sessions

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "ok", "version": __version__, "sessions": sessions.running_count(), "setup": rt.setup.state()}
        )

    async def list_sessions(request: Request) -> JSONResponse:
        listed = await run_in_threadpool(
            lambda: [{**s.to_dict(), "usage": rt.gateway.session_usage(s.id)} for s in sessions.list()])
        return JSONResponse(listed)


    async def create_session(request: Request) -> JSONResponse:
        body = await _json_object(request, '{"agent": "bash"}')
        label, cwd = body.get("label"), body.get("cwd")
        if (label is not None and not isinstance(label, str)) or (cwd is not None and not isinstance(cwd, str)):
            raise RequestError("'label' and 'cwd' must be strings")
        session = await run_in_threadpool(sessions.create, body.get("agent"), label, cwd)
        return JSONResponse(session.to_dict(), status_code=201)


    async def rename_session(request: Request) -> JSONResponse:
        label = (await _json_object(request, '{"label": "new name"}')).get("label")
        if not isinstance(label, str):
            raise RequestError('send JSON like {"label": "new name"}')
        session = sessions.rename(request.path_params["id"], label)
        return JSONResponse(session.to_dict())


    async def delete_session(request: Request) -> Response:
        await run_in_threadpool(sessions.close, request.path_params["id"])
        return Response(status_code=204)


    async def upload(request: Request) -> JSONResponse:
        settings = load_settings()
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.upload_max_bytes + 64 * 1024:
            # Refuse before the multipart parser spools the whole body to disk.
            limit_mib = settings.upload_max_bytes / (1024 * 1024)
            raise RequestError(f"the file is larger than the {limit_mib:g} MiB upload limit", status=413)
        try:
            form = await request.form(max_files=1, max_fields=10)
        except Exception as exc:  # noqa: BLE001 - multipart parser errors vary
            raise RequestError(f"send the file as multipart form data ({exc})") from None
        file = form.get("file")
        if file is None or isinstance(file, str):
            raise RequestError("no file in the form field 'file'")
        try:
            path = await run_in_threadpool(
                save_upload, settings.home, file.filename, file.file, settings.upload_max_bytes
            )
        finally:
            await form.close()
        return JSONResponse({"path": str(path)}, status_code=201)


    async def terminal_ws(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            session = sessions.get(websocket.path_params["id"])
        except SessionError as exc:
            await websocket.close(protocol.CLOSE_UNKNOWN_SESSION, str(exc)[:120])
            return
        client, replay = session.attach(asyncio.get_running_loop())
        send_lock = asyncio.Lock()

        async def send_text(text: str) -> None:
            async with send_lock:
                await websocket.send_text(text)

        async def forward_output() -> None:
            # This transport drives flow control: each time its viewer has caught
            # up (replay sent, queue emptied) it tells the session, which unpauses
            # the PTY if every viewer being behind had paused it.
            try:
                async with send_lock:
                    await websocket.send_bytes(replay)
                session.resume_output()
                while True:
                    item = await client.get()
                    if isinstance(item, Exited):
                        await send_text(protocol.exit_message(item.code))
                        await websocket.close(1000, "process exited")
                        return
                    session.resume_output()  # overlap the next PTY read with this send
                    async with send_lock:
                        await websocket.send_bytes(item)
            except ClientOverflow:
                log.info("A viewer of session %s fell too far behind and was disconnected.", session.id)
                await websocket.close(protocol.CLOSE_TOO_SLOW, "too far behind; reconnect to catch up")
            except ClientGone:
                await websocket.close(protocol.CLOSE_SESSION_CLOSED, "session closed")

        sender = asyncio.create_task(forward_output())
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    try:
                        session.write(message["bytes"])
                    except InputTooLarge as exc:
                        await send_text(protocol.error_message(str(exc)))
                elif message.get("text") is not None:
                    try:
                        resize = protocol.parse_control(message["text"])
                        session.resize(resize.cols, resize.rows)
                    except protocol.ProtocolError as exc:
                        await send_text(protocol.error_message(str(exc)))
        except (WebSocketDisconnect, RuntimeError):
            pass  # closed by the sender (exit, overflow) or the network
        finally:
            sender.cancel()
            session.detach(client)

    # Streamlit serves its own routes under server.baseUrlPath, but st.App(routes=...) exactly as given.
    base = base_url_path()
    return [
        Route(f"{base}/health", health, methods=["GET"]),
        Route(f"{base}/api/sessions", list_sessions, methods=["GET"]),
        Route(f"{base}/api/sessions", create_session, methods=["POST"]),
        Route(f"{base}/api/sessions/{{id}}", delete_session, methods=["DELETE"]),
        Route(f"{base}/api/sessions/{{id}}", rename_session, methods=["PATCH"]),
        Route(f"{base}/api/uploads", upload, methods=["POST"]),
        WebSocketRoute(f"{base}/terminal/ws/{{id}}", terminal_ws),
    ]
