"""The services' HTTP protocol (uvicorn's httptools, each response in one write), served by
a real uvicorn on a loopback port and asked by a real client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ticketing_common.http_protocol import CoalescingHttpToolsProtocol

LARGE = bytes(range(256)) * 40_000  # 10 MB: more than a socket takes at once


async def small(request: Request) -> Response:
    return JSONResponse({"id": 1, "status": "pending"})


async def large(request: Request) -> Response:
    return Response(LARGE, media_type="application/octet-stream")


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


#: released by the test to let the streamed response's last chunk go
release = asyncio.Event()


async def streamed(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first;"
        await release.wait()
        yield b"last"

    return StreamingResponse(chunks(), media_type="text/plain")


app = Starlette(
    routes=[
        Route("/small", small),
        Route("/large", large),
        Route("/echo", echo, methods=["POST"]),
        Route("/streamed", streamed),
    ]
)

#: what the real transports were asked to write, per connection
writes: list[list[int]] = []


class _Counting:
    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.sizes: list[int] = []
        writes.append(self.sizes)

    def write(self, data: bytes) -> None:
        self.sizes.append(len(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CountedCoalescing(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Counting(transport))  # type: ignore[arg-type]


class CountedPlain(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Counting(transport))  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(protocol: type[asyncio.Protocol]) -> AsyncIterator[str]:
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=protocol, loop="asyncio", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(autouse=True)
def _fresh() -> None:
    global release  # the streamed route's, bound to this test's loop
    writes.clear()
    release = asyncio.Event()


async def test_each_response_leaves_in_one_write_where_uvicorn_makes_two() -> None:
    for protocol, expected in ((CountedPlain, 2), (CountedCoalescing, 1)):
        writes.clear()
        async with serving(protocol) as base, httpx.AsyncClient(base_url=base) as client:
            for _ in range(3):  # one kept-alive connection
                response = await client.get("/small")
                assert response.status_code == 200
                assert response.json() == {"id": 1, "status": "pending"}
        assert len(writes) == 1
        assert len(writes[0]) == 3 * expected


async def test_concurrent_requests_and_large_bodies_arrive_whole() -> None:
    async with serving(CoalescingHttpToolsProtocol) as base:
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(base_url=base, limits=limits) as client:
            bodies = [bytes([n]) * (1000 * n + 1) for n in range(40)]
            answers = await asyncio.gather(
                *(client.post("/echo", content=body) for body in bodies),
                *(client.get("/large") for _ in range(3)),
            )
    assert [a.content for a in answers[:40]] == bodies
    assert all(a.content == LARGE for a in answers[40:])


async def test_a_streamed_body_leaves_chunk_by_chunk() -> None:
    async with (
        serving(CoalescingHttpToolsProtocol) as base,
        httpx.AsyncClient(base_url=base) as client,
        client.stream("GET", "/streamed") as response,
    ):
        chunks = response.aiter_raw()
        async with asyncio.timeout(5):  # the first chunk is not held back for the last
            first = await anext(chunks)
        assert first == b"first;"
        release.set()
        assert b"".join([chunk async for chunk in chunks]) == b"last"


async def test_a_closed_connection_gets_its_whole_response_first() -> None:
    async with serving(CoalescingHttpToolsProtocol) as base, httpx.AsyncClient() as client:
        response = await client.get(f"{base}/large", headers={"Connection": "close"})
    assert response.headers["connection"] == "close"
    assert response.content == LARGE
