"""A stand-alone messaging process for the crash tests: relay and/or consumer, nothing else.

    python -m ticketing_common.tests.messaging_worker --ready-file F [--relay] [--consume KEY]

Settings come from the environment (``SERVICE_NAME``, ``DB_NAME``, ``RABBITMQ_VHOST``,
``RABBITMQ_EXCHANGE``, ``MESSAGING_*``). The consumer records every ``audit_logs`` event in
``messaging_test_effects``; with ``WORKER_HANG_MARKER`` set, a message whose details say
``hang`` writes its effect, touches that file and then hangs inside its transaction, so a
test can kill the process mid-handler.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.dialects.postgresql import UUID

from ticketing_common.db import create_engine, create_sessionmaker, service_metadata
from ticketing_common.logs import configure_logging
from ticketing_common.messaging import (
    Consumer,
    MessageContext,
    MessagingSettings,
    OutboxRelay,
    Subscription,
)
from ticketing_common.messaging.contracts import AuditLog
from ticketing_common.settings import ServiceSettings

HANG_MARKER_ENV = "WORKER_HANG_MARKER"
STARTUP_TIMEOUT_SECONDS = 20

test_metadata = service_metadata()

#: one row per handler run that committed: "applied exactly once" means one row per message
effects = sa.Table(
    "messaging_test_effects",
    test_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("consumer", sa.String(200), nullable=False),
    sa.Column("message_id", UUID(as_uuid=True), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
)


async def record_effect(ctx: MessageContext, payload: AuditLog) -> None:
    await ctx.session.execute(
        sa.insert(effects).values(
            consumer=ctx.queue, message_id=ctx.envelope.message_id, seq=payload.details["seq"]
        )
    )
    marker = os.environ.get(HANG_MARKER_ENV)
    if marker and payload.details.get("hang"):
        await ctx.session.flush()
        Path(marker).touch()
        await asyncio.sleep(3600)


async def run(ready_file: Path, relay: bool, consume: list[str]) -> None:
    settings = ServiceSettings()
    config = MessagingSettings()
    configure_logging(settings.service_name, "INFO")
    engine = create_engine(settings)
    outbox_relay = OutboxRelay(settings, engine, config) if relay else None
    consumer = (
        Consumer(
            settings=settings,
            sessionmaker=create_sessionmaker(engine),
            subscriptions=[Subscription(key, record_effect) for key in consume],
            app=FastAPI(),
            config=config,
        )
        if consume
        else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
            if outbox_relay is not None:
                await outbox_relay.start()
                await outbox_relay.wait_connected()
            if consumer is not None:
                await consumer.start()
                await consumer.wait_ready()
        ready_file.touch()
        await stop.wait()
    finally:
        if consumer is not None:
            await consumer.stop()
        if outbox_relay is not None:
            await outbox_relay.stop()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--relay", action="store_true")
    parser.add_argument("--consume", action="append", default=[])
    args = parser.parse_args()
    asyncio.run(run(args.ready_file, args.relay, args.consume))


if __name__ == "__main__":
    main()
