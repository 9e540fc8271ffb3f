"""Model gateway benchmark: every number next to a direct call measured in the same run.

    .venv/bin/python bench/bench_gateway.py [--quick]

The real app runs (``streamlit run app.py``) with a personal access token and
``DATABRICKS_HOST`` pointing at a small upstream that plays a serving endpoint
in its own process. The upstream stamps every SSE chunk with the moment it
wrote it (``CLOCK_MONOTONIC``, which every process on the machine shares), so
the client can tell how long each chunk took to reach it: directly from the
upstream, or through the gateway (client -> app -> upstream and back).

1. first streamed chunk: from the upstream sending it to the client having
   it, direct vs gateway, p50/p95 (target: the gateway within 5 ms);
2. a non-streamed call, request to full answer, direct vs gateway, p50/p95
   (target: the gateway adds under 2 ms at p50);
3. memory: the app's RSS idle, at the peak of 20 concurrent streams (each
   ~1 MiB over ~4 s), and after (target: a few MiB at most).
Prints numbers; it is not a pass/fail test.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.appserver import start_app  # noqa: E402

MB = 1024 * 1024
MODEL = "databricks-claude-opus-4-6"
STAMP = re.compile(rb'"t_ns":\s*(\d+)')


# ---------------------------------------------------------------- the upstream (its own process)


def _upstream(port: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def event(kind: str, **fields: object) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()

    async def messages(request: Request) -> Response:
        body = await request.json()
        if not body.get("stream"):
            return JSONResponse({"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
                                 "content": [{"type": "text", "text": "pong"}], "stop_reason": "end_turn",
                                 "usage": {"input_tokens": 10, "output_tokens": 2}})
        chunks, size, gap = int(body.get("chunks", 8)), int(body.get("chunk_bytes", 64)), float(body.get("gap", 0))

        async def stream():  # noqa: ANN202
            yield event("message_start", message={"usage": {"input_tokens": 10, "output_tokens": 1}},
                        t_ns=time.monotonic_ns())
            text = "x" * size
            for _ in range(chunks):
                if gap:
                    await asyncio.sleep(gap)
                yield event("content_block_delta", index=0, delta={"type": "text_delta", "text": text},
                            t_ns=time.monotonic_ns())
            yield event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": chunks})
            yield event("message_stop")

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def not_found(request: Request) -> Response:
        return JSONResponse({"error_code": "NOT_FOUND"}, status_code=404)

    app = Starlette(routes=[Route("/serving-endpoints/anthropic/v1/messages", messages, methods=["POST"]),
                            Route("/.well-known/databricks-config", not_found)])
    # proto=IPPROTO_TCP: asyncio turns Nagle off only on such sockets (a plain socket() has proto 0),
    # and a serving endpoint does not hold chunks back for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    ready.set()
    server.run(sockets=[sock])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- measurements


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, .5) * 1e3:7.3f} ms  p95 {pct(values, .95) * 1e3:7.3f} ms"


def first_chunk(client: httpx.Client, url: str, headers: dict[str, str],
                samples: int) -> tuple[list[float], list[float]]:
    """(upstream-sent -> client-has first chunk, request start -> first chunk) per call."""
    delivery: list[float] = []
    ttfb: list[float] = []
    body = {"model": MODEL, "stream": True, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}],
            "chunks": 4}
    for _ in range(samples):
        start = time.monotonic_ns()
        with client.stream("POST", url, json=body, headers=headers) as r:
            chunks = r.iter_raw()
            for chunk in chunks:
                now = time.monotonic_ns()
                match = STAMP.search(chunk)
                if match:
                    delivery.append((now - int(match.group(1))) / 1e9)
                    ttfb.append((now - start) / 1e9)
                    break
            for _ in chunks:
                pass
    return delivery, ttfb


def whole_call(client: httpx.Client, url: str, headers: dict[str, str], samples: int) -> list[float]:
    body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        r = client.post(url, json=body, headers=headers)
        r.read()
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    return times


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def interleaved(measure, client: httpx.Client, a: tuple, b: tuple, samples: int) -> tuple[list, list]:  # noqa: ANN001
    """``measure`` one call at a time, alternating between ``a`` and ``b`` (url, headers), so that both
    see the same machine: other processes' load shifts over a run."""
    got: tuple[list, list] = ([], [])
    for _ in range(samples):
        for (url, headers), out in zip((a, b), got, strict=True):
            result = measure(client, url, headers, 1)
            if isinstance(result, tuple):
                if not out:
                    out.extend(([], []))
                out[0].extend(result[0])
                out[1].extend(result[1])
            else:
                out.extend(result)
    return got


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def app_pid(server) -> int:  # noqa: ANN001
    """The Python process serving the app (streamlit may sit behind a wrapper)."""
    return server.proc.pid


async def concurrent_streams(url: str, headers: dict[str, str], streams: int, pid: int) -> tuple[int, int]:
    """Run ``streams`` long streams at once; (peak RSS during them, bytes received)."""
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}],
            "chunks": 200, "chunk_bytes": 5000, "gap": 0.02}
    peak, received = 0, 0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss(pid))
            await asyncio.sleep(0.05)

    async def one(client: httpx.AsyncClient) -> int:
        got = 0
        async with client.stream("POST", url, json=body, headers=headers) as r:
            async for chunk in r.aiter_raw():
                got += len(chunk)
        return got

    limits = httpx.Limits(max_connections=streams + 5)
    transport = httpx.AsyncHTTPTransport(limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    async with httpx.AsyncClient(timeout=60, transport=transport) as client:
        sampler = asyncio.create_task(sample())
        results = await asyncio.gather(*(one(client) for _ in range(streams)))
        done.set()
        await sampler
    received = sum(results)
    return peak, received


def main() -> None:
    quick = "--quick" in sys.argv
    samples = 60 if quick else 400
    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    ready = ctx.Event()
    upstream = ctx.Process(target=_upstream, args=(port, ready), daemon=True)
    upstream.start()
    ready.wait(20)
    upstream_url = f"http://127.0.0.1:{port}"
    time.sleep(0.5)
    home = Path(tempfile.mkdtemp(prefix="bench-gateway-")) / "home"
    app = start_app(home, {"DATABRICKS_HOST": upstream_url, "DATABRICKS_TOKEN": "dapi-bench-token"})
    try:
        _, session = app.request("POST", "/api/sessions", {"agent": "bash"})
        environ = Path(f"/proc/{session['pid']}/environ").read_bytes().decode().split("\0")
        key = next(v.split("=", 1)[1] for v in environ if v.startswith("CODA_SESSION_KEY="))
        direct = f"{upstream_url}/serving-endpoints/anthropic/v1/messages"
        gateway = f"{app.url}/_coda/local/gateway/anthropic/v1/messages"
        direct_h = {"authorization": "Bearer dapi-bench-token", "accept-encoding": "identity"}
        gateway_h = {"authorization": f"Bearer {key}", "accept-encoding": "identity"}
        # Like the CLIs' HTTP stacks (Node, reqwest): no Nagle on the client's socket.
        nodelay = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        with httpx.Client(timeout=30, transport=nodelay) as client:
            for url, headers in ((direct, direct_h), (gateway, gateway_h)):  # warm up: connections, credentials
                whole_call(client, url, headers, 30)
                first_chunk(client, url, headers, 10)
            print(f"gateway benchmark, {samples} calls each (direct and gateway alternate), app pid {app_pid(app)}")
            print("\n1. first streamed chunk, upstream sent -> client has it (target: gateway within 5 ms)")
            (d_deliv, d_ttfb), (g_deliv, g_ttfb) = interleaved(first_chunk, client, (direct, direct_h),
                                                               (gateway, gateway_h), samples)
            print(f"   direct   {ms(d_deliv)}    (request -> first chunk {ms(d_ttfb)})")
            print(f"   gateway  {ms(g_deliv)}    (request -> first chunk {ms(g_ttfb)})")
            print("\n2. non-streamed call, request -> whole answer (target: gateway adds < 2 ms at p50)")
            cpu0 = cpu_seconds(app_pid(app))
            d_call, g_call = interleaved(whole_call, client, (direct, direct_h), (gateway, gateway_h), samples)
            cpu = (cpu_seconds(app_pid(app)) - cpu0) / samples
            print(f"   direct   {ms(d_call)}")
            print(f"   gateway  {ms(g_call)}")
            added = (pct(g_call, .5) - pct(d_call, .5)) * 1e3
            print(f"   added by the gateway at p50: {added:.3f} ms; the app's CPU time per call {cpu * 1e3:.3f} ms "
                  f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print("\n3. memory with 20 concurrent streams (~1 MiB each over ~4 s; target: a few MiB)")
        pid = app_pid(app)
        time.sleep(1)
        idle = rss(pid)
        peak, received = asyncio.run(concurrent_streams(gateway, gateway_h, 20, pid))
        time.sleep(1)
        after = rss(pid)
        print(f"   app RSS idle {idle / MB:7.1f} MiB   peak during 20 streams {peak / MB:7.1f} MiB "
              f"(+{(peak - idle) / MB:.1f})   after {after / MB:7.1f} MiB (+{(after - idle) / MB:.1f})")
        print(f"   {received / MB:.1f} MiB relayed")
        peak2, _ = asyncio.run(concurrent_streams(gateway, gateway_h, 20, pid))
        print(f"   second round: peak {peak2 / MB:7.1f} MiB (+{(peak2 - idle) / MB:.1f} over the first idle)")
        _, sessions = app.request("GET", "/api/sessions")
        print(f"   usage counted for the session: {sessions[0]['usage']}")
    finally:
        app.stop()
        upstream.terminate()
        upstream.join(5)
        if os.environ.get("BENCH_KEEP_LOG"):
            print(app.log()[-3000:])


if __name__ == "__main__":
    main()
