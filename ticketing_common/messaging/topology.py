"""Exchanges and queues of DESIGN §8, declared (idempotently) by whoever uses them.

- ``<exchange>`` (topic, durable): every domain event, routed by its key.
- ``<service>.<key>``: one durable queue per consumer service and key, so each service
  that needs an event gets its own copy.
- ``<service>.retry`` (headers exchange) and ``<service>.retry.<ms>ms`` queues: a failed
  message waits out its back-off in the delay queue of that length (one TTL per queue, so
  nothing waits behind a longer delay), then dead-letters through the default exchange
  straight back to the queue it came from.
- ``<service>.dead_letter``: messages given up on, with the reason in their headers.
- ``<exchange>.unrouted``: what the exchange could not route (a key nobody consumes yet)
  is kept there instead of being dropped by the broker.

With ``RABBITMQ_QUORUM_QUEUES`` every one of these queues is a quorum queue.
"""

from __future__ import annotations

from collections.abc import Iterable

import aio_pika
from aio_pika import ExchangeType
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
)
from pamqp.common import FieldTable

from ticketing_common.messaging.config import MessagingSettings
from ticketing_common.settings import ServiceSettings

ATTEMPT_HEADER = "x-attempt"
RETRY_DELAY_HEADER = "retry-delay-ms"  # no "x-": a headers exchange ignores those
UNROUTED_MAX_LENGTH = 100_000


def consumer_queue_name(service: str, routing_key: str) -> str:
    return f"{service}.{routing_key}"


def dead_letter_queue_name(service: str) -> str:
    return f"{service}.dead_letter"


def retry_exchange_name(service: str) -> str:
    return f"{service}.retry"


def delay_milliseconds(delay: float) -> int:
    return max(1, round(delay * 1000))


def delay_queue_name(service: str, delay: float) -> str:
    return f"{service}.retry.{delay_milliseconds(delay)}ms"


def unrouted_name(exchange: str) -> str:
    return f"{exchange}.unrouted"


def queue_arguments(settings: ServiceSettings, **extra: str | int) -> FieldTable:
    arguments: FieldTable = {"x-queue-type": "quorum"} if settings.rabbitmq_quorum_queues else {}
    arguments.update(extra)
    return arguments


async def declare_queue(
    channel: AbstractChannel, settings: ServiceSettings, name: str, **extra: str | int
) -> AbstractQueue:
    return await channel.declare_queue(
        name, durable=True, arguments=queue_arguments(settings, **extra)
    )


async def declare_event_exchange(
    channel: AbstractChannel, settings: ServiceSettings
) -> AbstractExchange:
    """The topic exchange of domain events, with its unrouted-message keeper."""
    unrouted = unrouted_name(settings.rabbitmq_exchange)
    keeper = await channel.declare_exchange(unrouted, ExchangeType.FANOUT, durable=True)
    kept = await declare_queue(channel, settings, unrouted, **{"x-max-length": UNROUTED_MAX_LENGTH})
    await kept.bind(keeper)
    return await channel.declare_exchange(
        settings.rabbitmq_exchange,
        ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": unrouted},
    )


async def declare_retry_topology(
    channel: AbstractChannel, settings: ServiceSettings, config: MessagingSettings
) -> tuple[AbstractExchange, AbstractQueue]:
    """The service's retry exchange with one delay queue per back-off, and its DLQ."""
    service = settings.service_name
    retry = await channel.declare_exchange(
        retry_exchange_name(service), ExchangeType.HEADERS, durable=True
    )
    for delay in sorted(set(config.retry_delays)):
        extra: dict[str, str | int] = {
            "x-message-ttl": delay_milliseconds(delay),
            "x-dead-letter-exchange": "",  # back via the default exchange, original key
        }
        if settings.rabbitmq_quorum_queues:
            extra |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
        waiting = await declare_queue(channel, settings, delay_queue_name(service, delay), **extra)
        await waiting.bind(
            retry,
            arguments={"x-match": "all", RETRY_DELAY_HEADER: str(delay_milliseconds(delay))},
        )
    dead_letter = await declare_queue(channel, settings, dead_letter_queue_name(service))
    return retry, dead_letter


async def declare_consumer_queues(
    channel: AbstractChannel,
    settings: ServiceSettings,
    exchange: AbstractExchange,
    routing_keys: Iterable[str],
) -> dict[str, AbstractQueue]:
    queues: dict[str, AbstractQueue] = {}
    for key in routing_keys:
        queue = await declare_queue(
            channel, settings, consumer_queue_name(settings.service_name, key)
        )
        await queue.bind(exchange, routing_key=key)
        queues[key] = queue
    return queues


async def connect(
    settings: ServiceSettings, config: MessagingSettings, role: str
) -> AbstractRobustConnection:
    """A robust connection named after the service and its role (visible in the broker)."""
    return await aio_pika.connect_robust(
        settings.rabbitmq_url,
        reconnect_interval=config.reconnect_interval,
        client_properties={"connection_name": f"{settings.service_name}.{role}"},
    )


async def connect_publisher(
    settings: ServiceSettings, config: MessagingSettings, role: str
) -> tuple[AbstractRobustConnection, AbstractExchange]:
    """Connect, open a publisher-confirm channel and declare the event exchange on it."""
    connection, exchanges = await connect_publishers(settings, config, role, 1)
    return connection, exchanges[0]


async def connect_publishers(
    settings: ServiceSettings, config: MessagingSettings, role: str, channels: int
) -> tuple[AbstractRobustConnection, list[AbstractExchange]]:
    """Connect, and open ``channels`` publisher-confirm channels on the event exchange
    (declared on the first)."""
    connection = await connect(settings, config, role)
    try:
        exchanges = [
            await declare_event_exchange(
                await connection.channel(publisher_confirms=True), settings
            )
            for _ in range(channels)
        ]
    except BaseException:
        await connection.close()
        raise
    return connection, exchanges
