"""Periodic passes every replica runs in the background (booking expiry, payment reconcile).

Each pass must be safe to run in several replicas at once (claim rows with
``FOR UPDATE SKIP LOCKED``) and returns how many rows it handled; a full batch means more
may be waiting, so the next pass starts at once instead of after the interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

logger = logging.getLogger("ticketing.background")

Pass = Callable[[FastAPI], Awaitable[int]]
AppNumber = Callable[[FastAPI], float]


async def run_periodically(
    app: FastAPI,
    run_pass: Pass,
    *,
    name: str,
    interval: AppNumber,
    batch_size: AppNumber | None = None,
) -> None:
    """Run ``run_pass`` forever; a failing pass is logged and retried next interval."""
    while True:
        try:
            handled = await run_pass(app)
        except Exception:
            logger.exception("%s pass failed; retrying next interval", name)
            handled = 0
        if handled:
            logger.info("%s pass handled rows", name, extra={"count": handled})
        if batch_size is None or handled < batch_size(app):
            await asyncio.sleep(interval(app))


def periodic_lifecycle(
    run_pass: Pass,
    *,
    name: str,
    interval: AppNumber,
    batch_size: AppNumber | None = None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A ``create_service_app`` lifecycle running ``run_pass`` while the app is up."""

    @contextlib.asynccontextmanager
    async def lifecycle(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(
            run_periodically(app, run_pass, name=name, interval=interval, batch_size=batch_size),
            name=name,
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifecycle
