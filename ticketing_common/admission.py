"""Admission control: at most N requests of a process run at once; the rest wait their turn.

One asyncio process shares its event loop among every request in flight. When an on-sale
puts hundreds of them in flight, each ``await`` waits behind all the others' ready work, so
a request that holds a pooled database connection across a few awaits holds it for seconds,
and the requests behind it time out waiting for the pool (a convoy: a bigger pool makes it
worse). Letting a bounded number run and queueing the rest in arrival order keeps every
step short; the queue, not the connection pool, absorbs the burst.

Probes and ``/metrics`` are never queued, so a busy process still reports itself alive.
Service-to-service calls (``/internal/...``) wait in a lane of their own that goes first:
each is a step of a request another service has already admitted (a booking's seat hold,
a payment's confirm), so finishing it frees work in flight, where a new public request
(a waiting room's poll, a page of events) only adds more.
"""

from __future__ import annotations

import asyncio
from collections import deque

from prometheus_client import Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

REQUESTS_WAITING = Gauge(
    "http_requests_waiting", "Requests queued for a turn (admission control) in this process"
)
_NEVER_QUEUED = frozenset({"/healthz", "/readyz", "/metrics"})
_FIRST = "/internal/"


class Turns:
    """A semaphore whose first lane is served before its second, each in arrival order."""

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._lanes: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())

    async def acquire(self, *, first: bool = False) -> None:
        if self._free > 0:
            self._free -= 1
            return
        lane = self._lanes[0 if first else 1]
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release()  # handed a turn while being cancelled: pass it on
            elif turn in lane:
                lane.remove(turn)
            raise

    def release(self) -> None:
        for lane in self._lanes:
            while lane:
                turn = lane.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._free += 1


class AdmissionMiddleware:
    """Run at most ``limit`` HTTP requests at once (0: no limit)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._turns = Turns(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limit <= 0 or scope["type"] != "http" or scope["path"] in _NEVER_QUEUED:
            await self.app(scope, receive, send)
            return
        REQUESTS_WAITING.inc()
        try:
            await self._turns.acquire(first=scope["path"].startswith(_FIRST))
        finally:
            REQUESTS_WAITING.dec()
        try:
            await self.app(scope, receive, send)
        finally:
            self._turns.release()
