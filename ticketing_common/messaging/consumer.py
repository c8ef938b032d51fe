"""Idempotent consumers: handler, inbox record and commit in one transaction, then ack.

Each delivery runs its handler inside a database transaction that first records the
message id in the inbox; a message whose id is already there was applied before and
is only acknowledged. The ack goes out after the commit, so a crash at any point leads
to a redelivery, never to a lost or doubly applied message.

A handler that raises is retried after a back-off (the message waits in a delay queue of
the broker, so nothing is held in memory and nothing blocks the queue meanwhile); after
``max_attempts`` deliveries, or at once for :class:`PermanentFailure` and for messages
that do not fit their schema, the message is parked in ``<service>.dead_letter`` with the
reason in its headers.

Deliveries are handled concurrently and retries come back later, so handlers must not
rely on the order in which events arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import time
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aio_pika
import asyncpg
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
    HeadersType,
)
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ticketing_common.db import utcnow
from ticketing_common.messaging.config import MessagingSettings
from ticketing_common.messaging.contracts import CONTRACTS, Payload
from ticketing_common.messaging.envelope import Envelope, InvalidMessage, decode_envelope
from ticketing_common.messaging.metrics import (
    HANDLER_DURATION,
    MESSAGES_CONSUMED,
    MESSAGES_DEAD_LETTERED,
    DeadLetterReason,
    Outcome,
)
from ticketing_common.messaging.topology import (
    ATTEMPT_HEADER,
    RETRY_DELAY_HEADER,
    connect,
    consumer_queue_name,
    dead_letter_queue_name,
    declare_consumer_queues,
    declare_event_exchange,
    declare_retry_topology,
    delay_milliseconds,
)
from ticketing_common.settings import ServiceSettings

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Payload)

#: headers the consumer sets on retried and dead-lettered copies
REASON_HEADER = "x-dead-letter-reason"
ERROR_HEADER = "x-error"
ORIGINAL_QUEUE_HEADER = "x-original-queue"
ORIGINAL_ROUTING_KEY_HEADER = "x-original-routing-key"
DEAD_LETTERED_AT_HEADER = "x-dead-lettered-at"
_BROKER_HEADER_PREFIXES = ("x-death", "x-first-death", "x-last-death", "x-delivery-count")
_OWN_HEADERS = frozenset(
    {
        ATTEMPT_HEADER,
        RETRY_DELAY_HEADER,
        REASON_HEADER,
        ERROR_HEADER,
        ORIGINAL_QUEUE_HEADER,
        ORIGINAL_ROUTING_KEY_HEADER,
        DEAD_LETTERED_AT_HEADER,
    }
)


class PermanentFailure(Exception):
    """Raised by a handler when retrying cannot help: the message is dead-lettered at once."""


@dataclass(frozen=True)
class MessageContext:
    """What a handler gets besides the payload.

    ``session`` is inside the transaction that also records the message in the inbox:
    write through it (and ``publish(ctx.session, ...)``), never commit it yourself.
    """

    session: AsyncSession
    envelope: Envelope
    app: FastAPI
    queue: str
    attempt: int


Handler = Callable[[MessageContext, P], Awaitable[None]]


@dataclass(frozen=True)
class OneStatement(Generic[P]):
    """A handler that is one SQL statement, sent with the inbox row as one statement.

    A handler run in a transaction costs four round trips to PostgreSQL at least (begin,
    the inbox row, its write, commit) and the ORM's session around them; a handler whose
    whole work is one write needs none of that. ``sql`` is that write, its rows taken
    ``FROM recorded`` (the inbox row, present only the first time the message comes), its
    parameters numbered from ``$4`` (``$1``-``$3`` are the inbox row's: the message id,
    the queue and the routing key), and ``arguments`` gives their values from the payload.
    The consumer sends::

        WITH recorded AS (INSERT INTO inbox_messages ... ON CONFLICT DO NOTHING RETURNING ...),
             applied AS (<sql>)
        SELECT count(*) FROM recorded

    with no transaction around it: PostgreSQL commits the inbox row and the write together
    or neither, so a redelivered message writes nothing, and a failing write is retried
    like any handler's exception.

    A handler that is usually one statement and rarely more (a check that nearly always
    finds the work done) gives ``only_if``, an SQL condition on the same parameters, and
    ``otherwise``, a handler: the statement records the message and writes only when the
    condition holds, and otherwise writes nothing and leaves the message to ``otherwise``,
    run as any handler, in a transaction with the inbox row. ``applied``, if given, is
    told how many rows ``sql`` returned (``sql`` then has a ``RETURNING``).
    """

    sql: str
    arguments: Callable[[P], Sequence[object]]
    only_if: str | None = None
    otherwise: Handler[P] | None = None
    applied: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        if "recorded" not in self.sql:
            raise ValueError("a one-statement handler writes only FROM recorded")
        if (self.only_if is None) != (self.otherwise is None):
            raise ValueError("only_if and otherwise come together")

    @functools.cached_property
    def with_inbox(self) -> str:
        # the service's own constant SQL; every value is a parameter
        applied = "(SELECT count(*) FROM applied)" if self.applied is not None else "0"
        if self.only_if is None:
            return f"WITH recorded AS ({_RECORD_IN_INBOX}), applied AS ({self.sql}) SELECT (SELECT count(*) FROM recorded) AS recorded, true AS ok, {applied} AS applied"  # noqa: E501, S608
        return (
            f"WITH ok AS (SELECT coalesce(({self.only_if}), false) AS yes), "  # noqa: S608
            f"recorded AS ({_RECORD_IN_INBOX_IF_OK}), applied AS ({self.sql}) "
            f"SELECT (SELECT count(*) FROM recorded) AS recorded, (SELECT yes FROM ok) AS ok, "
            f"{applied} AS applied"
        )


@dataclass(frozen=True)
class Subscription(Generic[P]):
    """``handler`` consumes ``routing_key`` from this service's queue ``<service>.<key>``:
    a coroutine run in the inbox row's transaction, or a :class:`OneStatement`."""

    routing_key: str
    handler: Handler[P] | OneStatement[P]

    def __post_init__(self) -> None:
        if self.routing_key not in CONTRACTS:
            raise ValueError(f"unknown routing key {self.routing_key!r}: see messaging.contracts")
        if isinstance(self.handler, OneStatement):
            _check_payload_annotation(self.handler.arguments, CONTRACTS[self.routing_key], 0)
            if self.handler.otherwise is not None:
                _check_payload_annotation(self.handler.otherwise, CONTRACTS[self.routing_key], 1)
        else:
            _check_payload_annotation(self.handler, CONTRACTS[self.routing_key], 1)

    @property
    def model(self) -> type[Payload]:
        return CONTRACTS[self.routing_key]


def _check_payload_annotation(
    handler: Callable[..., Any], model: type[Payload], position: int
) -> None:
    """Refuse, at import time, a handler whose payload type is not the key's schema."""
    try:
        hints = typing.get_type_hints(handler)
        params = list(inspect.signature(handler).parameters)
    except (NameError, TypeError, ValueError):
        return  # annotations we cannot resolve here; the payload is validated anyway
    annotated = hints.get(params[position]) if len(params) > position else None
    if isinstance(annotated, type) and not issubclass(model, annotated):
        raise TypeError(
            f"{getattr(handler, '__qualname__', handler)} takes {annotated.__name__}, "
            f"but this routing key carries {model.__name__}"
        )


@dataclass
class _Bound:
    subscription: Subscription[Any]
    queue: AbstractQueue
    consumer_tag: str


class Consumer:
    """Consumes a service's subscriptions from RabbitMQ into its database."""

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        subscriptions: Sequence[Subscription[Any]],
        app: FastAPI,
        config: MessagingSettings | None = None,
    ) -> None:
        keys = [s.routing_key for s in subscriptions]
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        if duplicated:
            raise ValueError(f"one handler per routing key; several for {duplicated}")
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.subscriptions = list(subscriptions)
        self.app = app
        self.config = config or MessagingSettings()
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._retry_exchange: AbstractExchange | None = None
        self._bound: list[_Bound] = []
        self._consuming = asyncio.Event()
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.config.concurrency)

    def queue_name(self, routing_key: str) -> str:
        return consumer_queue_name(self.settings.service_name, routing_key)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and start consuming in the background (retrying while the broker is away)."""
        self._supervisor = asyncio.create_task(
            self._connect_and_consume(), name=f"{self.settings.service_name}.consumer"
        )

    async def wait_ready(self) -> None:
        """Return once consuming (callers bound the wait with a timeout)."""
        await self._consuming.wait()

    @property
    def ready(self) -> bool:
        return (
            self._consuming.is_set()
            and self._connection is not None
            and self._connection.connected.is_set()
        )

    async def stop(self) -> None:
        """Stop taking deliveries, let in-flight handlers finish (within the grace), close."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        for bound in self._bound:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bound.queue.cancel(bound.consumer_tag), 2)
        if self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=self.config.shutdown_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._connection is not None:
            await self._connection.close()  # unacknowledged deliveries go back to the queue
        self._connection = None
        self._bound = []
        self._consuming.clear()

    async def _connect_and_consume(self) -> None:
        while True:
            connection: AbstractRobustConnection | None = None
            try:
                connection = await connect(self.settings, self.config, "consumer")
                self._publisher = await connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
                self._retry_exchange, _ = await declare_retry_topology(
                    self._publisher, self.settings, self.config
                )
                channel = await connection.channel()
                await channel.set_qos(prefetch_count=self.config.prefetch)
                exchange = await declare_event_exchange(channel, self.settings)
                queues = await declare_consumer_queues(
                    channel, self.settings, exchange, (s.routing_key for s in self.subscriptions)
                )
                self._connection = connection
                for subscription in self.subscriptions:
                    queue = queues[subscription.routing_key]
                    tag = await queue.consume(
                        functools.partial(self._on_delivery, subscription), no_ack=False
                    )
                    self._bound.append(_Bound(subscription, queue, tag))
            except Exception as exc:  # keep trying: messages wait in the broker meanwhile
                log.warning(
                    "consumer cannot set up on RabbitMQ, retrying in %.1fs: %s",
                    self.config.reconnect_interval,
                    exc,
                )
                self._connection = None
                self._bound = []
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
                await asyncio.sleep(self.config.reconnect_interval)
                continue
            self._consuming.set()
            log.info(
                "consuming %s",
                ", ".join(self.queue_name(s.routing_key) for s in self.subscriptions),
            )
            return

    # -- one delivery ------------------------------------------------------------------

    async def _on_delivery(
        self, subscription: Subscription[Any], message: AbstractIncomingMessage
    ) -> None:
        """Run each delivery in a task of our own: a channel that closes under it (broker
        restart) must not cancel a handler mid-transaction; the commit decides, and the
        redelivery that follows is recognised by the inbox."""
        if self._stopping:
            return  # not acknowledged: back to the queue when the connection closes
        task = asyncio.create_task(self._process(subscription, message))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _process(
        self, subscription: Subscription[Any], message: AbstractIncomingMessage
    ) -> None:
        queue = self.queue_name(subscription.routing_key)
        async with self._slots:
            started = time.perf_counter()
            try:
                outcome = await self._handle(subscription, queue, message, _attempt_of(message))
            except Exception:  # a bug here must not strand the delivery unacknowledged
                log.exception(
                    "message handling broke down, requeueing",
                    extra=_log_fields(queue, message, _attempt_of(message)),
                )
                await asyncio.sleep(self.config.retry_delay(1))
                await _nack(message)
                return
            HANDLER_DURATION.labels(queue).observe(time.perf_counter() - started)
        MESSAGES_CONSUMED.labels(queue, outcome.value).inc()

    async def _handle(
        self,
        subscription: Subscription[Any],
        queue: str,
        message: AbstractIncomingMessage,
        attempt: int,
    ) -> Outcome:
        try:
            envelope, payload = decode_envelope(message.body, subscription.routing_key)
        except InvalidMessage as exc:
            return await self._dead_letter(
                queue, subscription, message, attempt, DeadLetterReason.INVALID_MESSAGE, str(exc)
            )
        try:
            async with asyncio.timeout(self.config.handler_timeout):
                applied = await self._apply(subscription, queue, envelope, payload, attempt)
        except PermanentFailure as exc:
            return await self._dead_letter(
                queue,
                subscription,
                message,
                attempt,
                DeadLetterReason.PERMANENT_FAILURE,
                _describe(exc),
            )
        except Exception as exc:
            if attempt >= self.config.max_attempts:
                return await self._dead_letter(
                    queue,
                    subscription,
                    message,
                    attempt,
                    DeadLetterReason.ATTEMPTS_EXHAUSTED,
                    _describe(exc),
                )
            return await self._retry(queue, message, attempt, exc)
        await _ack(message)
        return Outcome.OK if applied else Outcome.DUPLICATE

    async def _apply(
        self,
        subscription: Subscription[Any],
        queue: str,
        envelope: Envelope,
        payload: Payload,
        attempt: int,
    ) -> bool:
        """Record the message in the inbox and run the handler, in one transaction.

        Returns False, changing nothing, when the inbox already holds the message. A
        concurrent delivery of the same message waits on the inbox row until this
        transaction ends, then sees it.
        """
        handler = subscription.handler
        if isinstance(handler, OneStatement):
            done = await self._apply_statement(
                handler, queue, subscription.routing_key, envelope, payload
            )
            if done is not None or handler.otherwise is None:
                return bool(done)
            handler = handler.otherwise  # its condition did not hold: nothing was written
        return await self._apply_handler(
            handler, queue, subscription.routing_key, envelope, payload, attempt
        )

    async def _apply_handler(
        self,
        handler: Handler[Any],
        queue: str,
        routing_key: str,
        envelope: Envelope,
        payload: Payload,
        attempt: int,
    ) -> bool:
        async with self.sessionmaker() as session:
            try:
                # The driver's own statement: no SQL construct to compile or key for the
                # cache per message; it begins the transaction the handler writes in.
                connection = await session.connection()
                recorded = await connection.exec_driver_sql(
                    _RECORD_IN_INBOX, (envelope.message_id, queue, routing_key)
                )
                if recorded.first() is None:
                    await session.rollback()
                    return False
                context = MessageContext(
                    session=session, envelope=envelope, app=self.app, queue=queue, attempt=attempt
                )
                await handler(context, payload)
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
        return True

    async def _apply_statement(
        self,
        statement: OneStatement[Any],
        queue: str,
        routing_key: str,
        envelope: Envelope,
        payload: Payload,
    ) -> bool | None:
        """Send a :class:`OneStatement` with the inbox row, committing on its own; False
        when the inbox already held the message (then it wrote nothing), None when its
        ``only_if`` did not hold (then it wrote nothing either)."""
        async with self.sessionmaker() as session:
            connection = await session.connection()
            # The driver's connection as the pool lent it, outside any transaction: the
            # session began none (it sent nothing) and rolls nothing back when it closes.
            driver: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
            row = await driver.fetchrow(
                statement.with_inbox,
                envelope.message_id,
                queue,
                routing_key,
                *statement.arguments(payload),
            )
        assert row is not None  # one row, always
        if not row["ok"]:
            return None
        if statement.applied is not None and row["recorded"]:
            statement.applied(row["applied"])
        return bool(row["recorded"])

    async def _retry(
        self, queue: str, message: AbstractIncomingMessage, attempt: int, exc: Exception
    ) -> Outcome:
        delay = self.config.retry_delay(attempt)
        error = _describe(exc)
        log.warning(
            "handler failed on attempt %d of %d, retrying in %.1fs: %s",
            attempt,
            self.config.max_attempts,
            delay,
            error,
            exc_info=exc,
            extra=_log_fields(queue, message, attempt, error=error),
        )
        headers = _forwarded_headers(message) | {
            ATTEMPT_HEADER: attempt + 1,
            RETRY_DELAY_HEADER: str(delay_milliseconds(delay)),
            ERROR_HEADER: error[:1000],
        }
        try:
            assert self._retry_exchange is not None
            await self._retry_exchange.publish(
                _copy(message, headers), queue, timeout=self.config.publish_timeout
            )
        except Exception as publish_error:
            # The retry could not be parked: hand the delivery back as it was, after the
            # back-off, so a broker hiccup neither loses it nor spins on it.
            log.error(
                "could not schedule the retry, requeueing: %s",
                publish_error,
                extra=_log_fields(queue, message, attempt),
            )
            await asyncio.sleep(delay)
            await _nack(message)
            return Outcome.RETRIED
        await _ack(message)
        return Outcome.RETRIED

    async def _dead_letter(
        self,
        queue: str,
        subscription: Subscription[Any],
        message: AbstractIncomingMessage,
        attempt: int,
        reason: DeadLetterReason,
        error: str,
    ) -> Outcome:
        dead_letter_queue = dead_letter_queue_name(self.settings.service_name)
        headers = _forwarded_headers(message) | {
            ATTEMPT_HEADER: attempt,
            REASON_HEADER: reason.value,
            ERROR_HEADER: error[:1000],
            ORIGINAL_QUEUE_HEADER: queue,
            ORIGINAL_ROUTING_KEY_HEADER: subscription.routing_key,
            DEAD_LETTERED_AT_HEADER: utcnow().isoformat(),
        }
        try:
            assert self._publisher is not None
            await self._publisher.default_exchange.publish(
                _copy(message, headers), dead_letter_queue, timeout=self.config.publish_timeout
            )
        except Exception as publish_error:
            log.error(
                "could not dead-letter the message, requeueing: %s",
                publish_error,
                extra=_log_fields(queue, message, attempt),
            )
            await asyncio.sleep(self.config.retry_delay(1))
            await _nack(message)
            return Outcome.RETRIED
        await _ack(message)
        MESSAGES_DEAD_LETTERED.labels(queue, reason.value).inc()
        log.error(
            "message dead-lettered to %s (%s): %s",
            dead_letter_queue,
            reason.value,
            error,
            extra=_log_fields(queue, message, attempt, reason=reason.value, error=error),
        )
        return Outcome.DEAD_LETTERED


def _attempt_of(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(ATTEMPT_HEADER, 1)
    try:
        return max(1, int(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1


def _forwarded_headers(message: AbstractIncomingMessage) -> HeadersType:
    return {
        key: value
        for key, value in (message.headers or {}).items()
        if key not in _OWN_HEADERS and not key.startswith(_BROKER_HEADER_PREFIXES)
    }


def _copy(message: AbstractIncomingMessage, headers: HeadersType) -> aio_pika.Message:
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        type=message.type,
        app_id=message.app_id,
        timestamp=message.timestamp,
    )


#: built once: a statement built per message costs its cache key every time
_RECORD_IN_INBOX = (
    "INSERT INTO inbox_messages (message_id, consumer, routing_key) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING RETURNING message_id"
)
#: the same, in a :class:`OneStatement` with ``only_if`` (its CTE ``ok``): only if it holds
_RECORD_IN_INBOX_IF_OK = (
    "INSERT INTO inbox_messages (message_id, consumer, routing_key) "
    "SELECT $1::uuid, $2::varchar, $3::varchar WHERE (SELECT yes FROM ok) "
    "ON CONFLICT DO NOTHING RETURNING message_id"
)


async def _ack(message: AbstractIncomingMessage) -> None:
    try:
        await message.ack()
    except Exception as exc:  # the channel went away: the redelivery finds the inbox row
        log.info(
            "ack lost, the message will come again and be skipped: %s",
            exc,
            extra={"message_id": message.message_id},
        )


async def _nack(message: AbstractIncomingMessage) -> None:
    with contextlib.suppress(Exception):  # if the channel is gone, the broker requeues anyway
        await message.nack(requeue=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "TimeoutError: the handler ran past its timeout"
    return f"{type(exc).__name__}: {exc}"


def _log_fields(
    queue: str, message: AbstractIncomingMessage, attempt: int, **more: str
) -> dict[str, Any]:
    return {
        "queue": queue,
        "message_id": message.message_id,
        "routing_key": message.type,
        "attempt": attempt,
        **more,
    }
