"""Admission control: at most N requests of a process run at once; the rest wait their turn.

One asyncio process shares its event loop among every request in flight. When an on-sale
puts hundreds of them in flight, each ``await`` waits behind all the others' ready work, so
a request that holds a pooled database connection across a few awaits holds it for seconds,
and the requests behind it time out waiting for the pool (a convoy: a bigger pool makes it
worse). Letting a bounded number run and queueing the rest in arrival order keeps every
step short; the queue, not the connection pool, absorbs the burst.

Probes and ``/metrics`` are never queued, so a busy process still reports itself alive.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

REQUESTS_WAITING = Gauge(
    "http_requests_waiting", "Requests queued for a turn (admission control) in this process"
)
_NEVER_QUEUED = frozenset({"/healthz", "/readyz", "/metrics"})


class AdmissionMiddleware:
    """Run at most ``limit`` HTTP requests at once (0: no limit)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._turns: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limit <= 0 or scope["type"] != "http" or scope["path"] in _NEVER_QUEUED:
            await self.app(scope, receive, send)
            return
        if self._turns is None:  # made on the serving loop, on first use
            self._turns = asyncio.Semaphore(self.limit)
        REQUESTS_WAITING.inc()
        try:
            await self._turns.acquire()
        finally:
            REQUESTS_WAITING.dec()
        try:
            await self.app(scope, receive, send)
        finally:
            self._turns.release()
