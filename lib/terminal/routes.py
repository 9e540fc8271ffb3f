"""HTTP and WebSocket routes served next to Streamlit on the same port.

Authorization and the Origin check happen earlier, in ``lib.access.middleware``;
these handlers only translate between HTTP and the session registry.
"""

from __future__ import annotations

import asyncio
import json
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
from lib.terminal.errors import InputTooLarge, RequestError, SessionError
from lib.terminal.scrollback import Replay, Size
from lib.terminal.session import MAX_PENDING_INPUT
from lib.terminal.uploads import save_upload
from lib.terminal.viewers import Client, ClientGone, ClientOverflow, Exited

log = logging.getLogger(__name__)


async def request_error(request: Request, exc: Exception) -> JSONResponse:
    """Every refused API request answers JSON ``{"error": "..."}`` with the error's status."""
    assert isinstance(exc, RequestError)
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


EXCEPTION_HANDLERS = {RequestError: request_error}


MAX_JSON_BYTES = 64 * 1024  # the API's JSON bodies are a few fields; nothing legitimate comes near


async def _json_object(request: Request, example: str) -> dict[str, Any]:
    """The request body as a JSON object, read with a cap: 413 past ``MAX_JSON_BYTES``, 400 when not JSON."""
    too_big = RequestError(f"the request body is larger than the {MAX_JSON_BYTES // 1024} KiB limit", status=413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise too_big
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise too_big
    try:
        body: Any = json.loads(bytes(raw))
    except RecursionError:
        raise RequestError(f"the request body is nested too deeply; send JSON like {example}") from None
    except ValueError:
        raise RequestError(f"the request body must be JSON like {example}") from None
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object like {example}")
    return body


_background: set[asyncio.Task] = set()
REPLAY_FRAME = 256 * 1024  # the browser starts drawing a long replay before all of it arrived


def _hello(message: dict[str, Any]) -> protocol.Hello | None:
    """The hello in a first WebSocket message, if that is what it is."""
    text = message.get("text")
    if text is None or '"hello"' not in text:
        return None
    try:
        control = protocol.parse_control(text)
    except protocol.ProtocolError:
        return None
    return control if isinstance(control, protocol.Hello) else None


async def _close_quietly(websocket: WebSocket, code: int, reason: str) -> None:
    try:
        await websocket.close(code, reason)
    except (RuntimeError, OSError):
        pass  # already closed


async def _send_replay(websocket: WebSocket, replay: Replay, unseen: int, input_taken: int | None) -> None:
    """The replay, framed as ``lib.terminal.protocol`` describes it."""
    mode = "resume" if replay.resume else "full"
    await websocket.send_text(protocol.replay_message(mode, replay.start, replay.cols, replay.rows, input_taken))
    if replay.prefix:
        await websocket.send_bytes(replay.prefix)
    pos, marked = replay.start, unseen >= replay.end
    for item in replay.items:
        if isinstance(item, Size):
            await websocket.send_text(protocol.size_message(item.cols, item.rows))
            continue
        data = memoryview(item)
        while data:
            stop = len(data) if marked else min(len(data), unseen - pos)
            if stop == 0:
                await websocket.send_text(protocol.unseen_message())
                marked = True
                continue
            piece = data[: min(stop, REPLAY_FRAME)]
            await websocket.send_bytes(bytes(piece))
            pos += len(piece)
            data = data[len(piece) :]
    if not marked and unseen < replay.end:
        await websocket.send_text(protocol.unseen_message())
    await websocket.send_text(protocol.live_message(replay.end))


def build_routes(rt: Runtime) -> list[BaseRoute]:
    """The app's own routes, bound to the runtime's services."""
    sessions = rt.sessions

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "ok", "version": __version__, "sessions": sessions.running_count(), "setup": rt.setup.state()}
        )

    async def list_sessions(request: Request) -> JSONResponse:
        listed = await run_in_threadpool(
            lambda: [{**s.to_dict(), "usage": rt.gateway.session_usage(s.id)}
                     for s in [*sessions.list(), *sessions.ended()]])  # + those ended by a restart
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

    async def resume_session(request: Request) -> JSONResponse:
        """A session ended by a restart starts again: same id, agent, folder and conversation."""
        session = await run_in_threadpool(sessions.resume, request.path_params["id"])
        return JSONResponse(session.to_dict(), status_code=201)


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


    # Each viewer's current connection and queue, per session: a reconnect replaces the old one.
    connections: dict[tuple[str, str], tuple[WebSocket, Client]] = {}

    async def terminal_ws(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            session = sessions.get(websocket.path_params["id"])
        except SessionError as exc:
            await websocket.close(protocol.CLOSE_UNKNOWN_SESSION, str(exc)[:120])
            return
        loop = asyncio.get_running_loop()
        # The browser says first who it is and how much output it has (``protocol.Hello``).
        # Browsers always send an Origin; other clients (scripts, the tests' clients) get no wait.
        first: asyncio.Task | None = None
        hello = None
        if websocket.headers.get("origin"):
            first = loop.create_task(websocket.receive())
            await asyncio.wait({first}, timeout=protocol.HELLO_WAIT_S)
        if first is not None and first.done():
            try:
                message = first.result()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            hello = _hello(message)
            if hello is not None:
                first = None  # consumed; anything else is handled below as the first message
        viewer = hello.viewer if hello else None
        stream, taken = session.claim_input(viewer) if viewer else (None, None)
        previous = connections.pop((session.id, viewer), None) if viewer else None
        if previous is not None:
            # The same page reconnected (its old socket died on the way): the old viewer
            # counts as gone from now on, and its late input is dropped (``claim_input``).
            old_socket, old_client = previous
            session.detach(old_client)
            closing = loop.create_task(_close_quietly(old_socket, protocol.CLOSE_REPLACED, "replaced"))
            _background.add(closing)
            closing.add_done_callback(_background.discard)
        whole = hello is not None and hello.whole  # the benchmark's baseline: no late start
        client, replay, unseen = session.attach_viewer(
            loop, resume_from=hello.resume if hello else None,
            scrollback_lines=0 if whole else protocol.SCROLLBACK_LINES,
        )
        if viewer:
            connections[(session.id, viewer)] = (websocket, client)
        send_lock = asyncio.Lock()
        heard = [loop.time()]  # when the browser last said anything

        async def send_text(text: str) -> None:
            async with send_lock:
                await websocket.send_text(text)

        async def forward_output() -> None:
            # This transport drives flow control: each time its viewer has caught
            # up (replay sent, queue emptied) it tells the session, which unpauses
            # the PTY if every viewer being behind had paused it.
            try:
                async with send_lock:
                    await _send_replay(websocket, replay, unseen, taken)
                if replay.alt_from_before and not replay.resume:
                    session.nudge_redraw(loop)
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

        async def keepalive() -> None:
            # Pings through proxies that cut quiet connections; a browser gone
            # silent (a dead network, a frozen tab) stops holding a viewer.
            interval = protocol.PING_INTERVAL_S
            while True:
                await asyncio.sleep(interval)
                if loop.time() - heard[0] > 3 * interval:
                    await _close_quietly(websocket, protocol.CLOSE_NO_ANSWER, "no answer to pings")
                    return
                await send_text(protocol.ping_message())

        sender = asyncio.create_task(forward_output())
        pinger = asyncio.create_task(keepalive())
        # Every session's attention state, now and on each change (lib.attention.hub); after the replay.
        attention = asyncio.create_task(sessions.attention.stream(send_text))
        try:
            while True:
                if first is not None:
                    message, first = await first, None
                else:
                    message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                heard[0] = loop.time()
                if message.get("bytes") is not None:
                    try:
                        if len(message["bytes"]) > MAX_PENDING_INPUT:
                            raise InputTooLarge(
                                f"this paste is {len(message['bytes']) / (1024 * 1024):.0f} MiB; the terminal "
                                f"takes at most {MAX_PENDING_INPUT // (1024 * 1024)} MiB at a time, so paste it "
                                "in smaller parts (or upload it as a file)")
                        if stream is None:
                            session.write(message["bytes"])
                        elif not session.write_input(stream, message["bytes"]):
                            break  # a newer connection of this viewer took over; it resends this
                    except InputTooLarge as exc:
                        await send_text(protocol.error_message(str(exc)))
                elif message.get("text") is not None:
                    try:
                        control = protocol.parse_control(message["text"])
                        if isinstance(control, protocol.Resize):
                            session.resize(control.cols, control.rows)
                        elif isinstance(control, protocol.Ping):
                            await send_text(protocol.pong_message(stream.received if stream else None))
                    except protocol.ProtocolError as exc:
                        await send_text(protocol.error_message(str(exc)))
        except (WebSocketDisconnect, RuntimeError):
            pass  # closed by the sender (exit, overflow) or the network
        finally:
            if first is not None:
                first.cancel()
            sender.cancel()
            pinger.cancel()
            attention.cancel()
            session.detach(client)
            if viewer and connections.get((session.id, viewer), (None,))[0] is websocket:
                del connections[(session.id, viewer)]

    # Streamlit serves its own routes under server.baseUrlPath, but st.App(routes=...) exactly as given.
    base = base_url_path()
    return [
        Route(f"{base}/health", health, methods=["GET"]),
        Route(f"{base}/api/sessions", list_sessions, methods=["GET"]),
        Route(f"{base}/api/sessions", create_session, methods=["POST"]),
        Route(f"{base}/api/sessions/{{id}}", delete_session, methods=["DELETE"]),
        Route(f"{base}/api/sessions/{{id}}", rename_session, methods=["PATCH"]),
        Route(f"{base}/api/sessions/{{id}}/resume", resume_session, methods=["POST"]),
        Route(f"{base}/api/uploads", upload, methods=["POST"]),
        WebSocketRoute(f"{base}/terminal/ws/{{id}}", terminal_ws),
    ]
