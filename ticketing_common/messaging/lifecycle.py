"""Wiring into a service app: relay and consumers start and stop with it; ``/readyz`` sees them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request

from ticketing_common.messaging.config import MessagingSettings
from ticketing_common.messaging.consumer import Consumer, Subscription
from ticketing_common.messaging.outbox import OutboxRelay

log = logging.getLogger(__name__)

READINESS_CHECK_NAME = "messaging"


def messaging_lifecycle(
    *,
    subscriptions: Sequence[Subscription[Any]] = (),
    relay: bool = True,
    config: MessagingSettings | None = None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A lifecycle for ``create_service_app(lifecycles=[...])``.

    Runs this service's outbox relay (``relay=False`` for a service that never publishes)
    and a consumer for ``subscriptions``, and adds the ``messaging`` readiness check.
    Start-up waits a few seconds for the broker, then carries on without it: requests are
    served, events wait in the outbox, and both parts connect as soon as it is back.
    """
    subscriptions = list(subscriptions)

    @contextlib.asynccontextmanager
    async def lifecycle(app: FastAPI) -> AsyncIterator[None]:
        settings = app.state.settings
        messaging_config = config or MessagingSettings()
        outbox_relay = OutboxRelay(settings, app.state.engine, messaging_config) if relay else None
        consumer = (
            Consumer(
                settings=settings,
                sessionmaker=app.state.sessionmaker,
                subscriptions=subscriptions,
                app=app,
                config=messaging_config,
            )
            if subscriptions
            else None
        )
        app.state.outbox_relay = outbox_relay
        app.state.consumer = consumer

        async def check_messaging(request: Request) -> None:
            if outbox_relay is not None and not outbox_relay.connected:
                raise RuntimeError("outbox relay not connected to RabbitMQ")
            if consumer is not None and not consumer.ready:
                raise RuntimeError("consumers not running")

        if outbox_relay is not None:
            await outbox_relay.start()
        if consumer is not None:
            await consumer.start()
        app.state.extra_checks[READINESS_CHECK_NAME] = check_messaging
        try:
            await _wait_started(outbox_relay, consumer, messaging_config.startup_wait)
            yield
        finally:
            app.state.extra_checks.pop(READINESS_CHECK_NAME, None)
            if consumer is not None:
                await consumer.stop()
            if outbox_relay is not None:
                await outbox_relay.stop()

    return lifecycle


async def _wait_started(
    outbox_relay: OutboxRelay | None, consumer: Consumer | None, within: float
) -> None:
    waits = []
    if outbox_relay is not None:
        waits.append(outbox_relay.wait_connected())
    if consumer is not None:
        waits.append(consumer.wait_ready())
    try:
        async with asyncio.timeout(within):
            await asyncio.gather(*waits)
    except TimeoutError:
        log.warning("RabbitMQ not reachable at start-up; messaging will connect when it is")
