"""Admission control: a bounded number of requests run at once, the rest wait in turn."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from ticketing_common.admission import REQUESTS_WAITING, AdmissionMiddleware


def _app(limit: int) -> tuple[FastAPI, dict[str, int], asyncio.Event]:
    app = FastAPI()
    seen = {"running": 0, "most": 0}
    go = asyncio.Event()

    @app.get("/work")
    async def work() -> dict[str, bool]:
        seen["running"] += 1
        seen["most"] = max(seen["most"], seen["running"])
        await go.wait()
        seen["running"] -= 1
        return {"done": True}

    @app.get("/internal/work")
    async def internal_work() -> dict[str, bool]:
        return await work()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(AdmissionMiddleware, limit=limit)
    return app, seen, go


async def test_only_the_limit_runs_at_once_and_every_request_is_served() -> None:
    app, seen, go = _app(limit=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        calls = [asyncio.create_task(c.get("/work")) for _ in range(6)]
        await asyncio.sleep(0.1)

        assert seen["running"] == 2
        assert REQUESTS_WAITING._value.get() == 4  # the queued ones show on /metrics
        probe = await asyncio.wait_for(c.get("/healthz"), 2)  # never queued
        assert probe.status_code == 200

        go.set()
        answers = await asyncio.gather(*calls)

    assert [a.status_code for a in answers] == [200] * 6
    assert seen["most"] == 2
    assert REQUESTS_WAITING._value.get() == 0


async def test_no_limit_lets_everything_run() -> None:
    app, seen, go = _app(limit=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        calls = [asyncio.create_task(c.get("/work")) for _ in range(6)]
        await asyncio.sleep(0.1)
        assert seen["running"] == 6
        go.set()
        await asyncio.gather(*calls)


async def test_service_to_service_calls_go_before_queued_public_requests() -> None:
    app, seen, go = _app(limit=1)
    order: list[str] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:

        async def call(path: str) -> None:
            response = await c.get(path)
            assert response.status_code == 200
            order.append(path)

        running = asyncio.create_task(call("/work"))
        await asyncio.sleep(0.05)
        public = [asyncio.create_task(call("/work")) for _ in range(3)]
        await asyncio.sleep(0.05)
        internal = asyncio.create_task(call("/internal/work"))
        await asyncio.sleep(0.05)
        assert seen["running"] == 1

        go.set()
        await asyncio.gather(running, *public, internal)

    assert order[:2] == ["/work", "/internal/work"]  # the first queued public one waited
    assert seen["most"] == 1


async def test_a_cancelled_wait_gives_no_turn_away() -> None:
    from ticketing_common.admission import Turns

    turns = Turns(1)
    await turns.acquire()
    waiting = asyncio.create_task(turns.acquire())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.sleep(0)
    turns.release()

    await asyncio.wait_for(turns.acquire(first=True), 1)  # the freed turn is still there
