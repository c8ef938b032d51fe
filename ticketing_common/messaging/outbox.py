"""Transactional outbox: ``publish()`` writes a row, the relay moves committed rows to RabbitMQ.

A message exists for the broker only once the transaction that wrote it commits, so a
rolled-back change never announces itself, and a committed one is never lost: the row
stays until the broker has confirmed it. ``publish()`` also sends ``NOTIFY`` (delivered by
PostgreSQL at commit, never for a rolled-back transaction), which wakes every relay of the
service at once; the relay polls as well, in case a notification is missed.

Any number of relays may run against one outbox: each claims a batch with
``FOR UPDATE SKIP LOCKED``, publishes it with publisher confirms, and marks it sent in the
same transaction. A relay that dies mid-batch releases its rows for another one to
publish again; consumers drop such duplicates through their inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractExchange, AbstractRobustConnection
from sqlalchemy import String, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from ticketing_common.messaging.config import MessagingSettings
from ticketing_common.messaging.contracts import CONTRACTS, Payload
from ticketing_common.messaging.envelope import CONTENT_TYPE, draft_envelope, encode_envelope
from ticketing_common.messaging.metrics import (
    MESSAGES_PUBLISHED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    PUBLISH_FAILURES,
)
from ticketing_common.messaging.schema import outbox_messages
from ticketing_common.messaging.topology import connect_publishers
from ticketing_common.settings import ServiceSettings

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "ticketing_outbox"
_BACKOFF_MIN = 0.2
_BACKOFF_MAX = 10.0
_PURGE_EVERY_SECONDS = 600.0
_PURGE_CHUNK = 1000


async def publish(session: AsyncSession, routing_key: str, payload: Payload) -> uuid.UUID:
    """Queue a domain event in the caller's transaction; return its message id.

    Nothing leaves the process here: the relay publishes the message after the
    transaction commits, and never if it rolls back.
    """
    model = CONTRACTS.get(routing_key)
    if model is None:
        raise ValueError(f"unknown routing key {routing_key!r}: add it to messaging.contracts")
    if not isinstance(payload, model):
        raise TypeError(f"{routing_key!r} carries {model.__name__}, not {type(payload).__name__}")
    draft = draft_envelope(routing_key, payload)
    message_id = uuid.UUID(draft["message_id"])
    await session.execute(
        _QUEUE_MESSAGE, {"message_id": message_id, "routing_key": routing_key, "envelope": draft}
    )
    return message_id


# The row and the relays' wake-up in one round trip; built once (a statement built per
# call costs its cache key every time).
_QUEUE_MESSAGE = text(
    f"""
    WITH queued AS (
        INSERT INTO outbox_messages (message_id, routing_key, envelope)
        VALUES (:message_id, :routing_key, :envelope)
        RETURNING 1
    )
    SELECT pg_notify('{NOTIFY_CHANNEL}', '') FROM queued
    """  # noqa: S608 - a constant channel name
).bindparams(
    bindparam("message_id", type_=UUID(as_uuid=True)),
    bindparam("routing_key", type_=String()),
    bindparam("envelope", type_=JSONB()),
)


@dataclass(frozen=True)
class _Claimed:
    id: int
    message_id: uuid.UUID
    routing_key: str
    envelope: dict[str, Any]


def _set_event(event: asyncio.Event, *_: object) -> None:
    event.set()


class RelayError(Exception):
    """Some messages of a batch could not be published; they stay in the outbox."""


class OutboxRelay:
    """Publishes the committed outbox rows of one service database to the event exchange."""

    def __init__(
        self,
        settings: ServiceSettings,
        engine: AsyncEngine,
        config: MessagingSettings | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.config = config or MessagingSettings()
        self.published = 0
        self._wakeup = asyncio.Event()
        self._connection: AbstractRobustConnection | None = None
        self._exchanges: list[AbstractExchange] = []
        self._declared = asyncio.Event()
        self._listening = False
        self._tasks: list[asyncio.Task[None]] = []
        self._next_purge = 0.0
        self._next_backlog_refresh = 0.0

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"{self.settings.service_name}.outbox-relay"),
            asyncio.create_task(self._listen(), name=f"{self.settings.service_name}.outbox-listen"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._exchanges = []
            self._declared.clear()

    @property
    def connected(self) -> bool:
        """Whether the relay can publish right now (broker connected and topology declared)."""
        return (
            bool(self._exchanges)
            and self._connection is not None
            and self._connection.connected.is_set()
        )

    @property
    def listening(self) -> bool:
        return self._listening

    async def wait_connected(self) -> None:
        """Return once the relay can publish (callers bound the wait with a timeout)."""
        await self._declared.wait()
        assert self._connection is not None
        await self._connection.connected.wait()

    def wake(self) -> None:
        self._wakeup.set()

    # -- publishing ------------------------------------------------------------------

    async def relay_pending(self) -> int:
        """Publish every committed, unpublished row; return how many this relay sent.

        Raises :class:`RelayError` (after committing what did go out) when some could not.
        """
        exchanges = self._exchanges
        if not exchanges:
            raise RelayError("not connected to the broker")
        total = 0
        try:
            while True:
                async with self.engine.begin() as conn:
                    claimed = await self._claim(conn)
                    if not claimed:
                        break
                    # spread over the channels: each sends its publishes one at a time
                    results = await asyncio.gather(
                        *(
                            self._publish_row(exchanges[i % len(exchanges)], row)
                            for i, row in enumerate(claimed)
                        ),
                        return_exceptions=True,
                    )
                    sent = [row for row, r in zip(claimed, results, strict=True) if r is None]
                    failed = [
                        (row, r)
                        for row, r in zip(claimed, results, strict=True)
                        if isinstance(r, BaseException)
                    ]
                    await self._mark(conn, sent, failed)
                for row in sent:
                    MESSAGES_PUBLISHED.labels(row.routing_key).inc()
                total += len(sent)
                self.published += len(sent)
                if failed:
                    row, exc = failed[0]
                    raise RelayError(
                        f"{len(failed)} of {len(claimed)} messages not published "
                        f"(first: {row.routing_key}: {type(exc).__name__}: {exc})"
                    )
                if len(claimed) < self.config.relay_batch_size:
                    break
        finally:
            if time.monotonic() >= self._next_backlog_refresh:
                await self._refresh_backlog()
        return total

    async def _claim(self, conn: AsyncConnection) -> list[_Claimed]:
        t = outbox_messages.c
        rows = await conn.execute(
            select(t.id, t.message_id, t.routing_key, t.envelope)
            .where(t.published_at.is_(None), t.available_at <= func.now())
            .order_by(t.id)
            .limit(self.config.relay_batch_size)
            .with_for_update(skip_locked=True)
        )
        return [_Claimed(*row) for row in rows]

    async def _publish_row(self, exchange: AbstractExchange, row: _Claimed) -> None:
        service = self.settings.service_name
        message = aio_pika.Message(
            encode_envelope(row.envelope, service),
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(row.message_id),
            type=row.routing_key,
            app_id=service,
        )
        # Not mandatory: the exchange's alternate exchange keeps what no queue takes.
        await exchange.publish(
            message, row.routing_key, mandatory=False, timeout=self.config.publish_timeout
        )

    @staticmethod
    async def _mark(
        conn: AsyncConnection,
        sent: list[_Claimed],
        failed: list[tuple[_Claimed, BaseException]],
    ) -> None:
        t = outbox_messages.c
        if sent:
            await conn.execute(
                update(outbox_messages)
                .where(t.id.in_([row.id for row in sent]))
                .values(published_at=func.now(), attempts=t.attempts + 1, last_error=None)
            )
        for row, exc in failed:
            PUBLISH_FAILURES.labels(row.routing_key).inc()
            await conn.execute(
                update(outbox_messages)
                .where(t.id == row.id)
                .values(attempts=t.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:1000])
            )

    async def _refresh_backlog(self) -> None:
        """Set the backlog gauges; at most once a second (it is a count over the outbox)."""
        self._next_backlog_refresh = time.monotonic() + 1.0
        try:
            async with self.engine.connect() as conn:
                count, age = (
                    await conn.execute(
                        text(
                            "SELECT count(*), "
                            "coalesce(extract(epoch FROM now() - min(created_at)), 0) "
                            "FROM outbox_messages WHERE published_at IS NULL"
                        )
                    )
                ).one()
        except Exception as exc:  # a gauge is not worth failing the relay for
            log.debug("outbox backlog not refreshed: %s", exc)
            return
        OUTBOX_BACKLOG.set(count)
        OUTBOX_OLDEST_AGE.set(float(age))

    async def purge_published(self) -> int:
        """Delete published rows older than the retention; return how many went."""
        purged = 0
        while True:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    text(
                        "DELETE FROM outbox_messages WHERE id IN ("
                        " SELECT id FROM outbox_messages"
                        " WHERE published_at < now() - make_interval(secs => :retention)"
                        " ORDER BY id LIMIT :chunk FOR UPDATE SKIP LOCKED)"
                    ),
                    {"retention": self.config.outbox_retention, "chunk": _PURGE_CHUNK},
                )
            deleted = result.rowcount or 0
            purged += deleted
            if deleted < _PURGE_CHUNK:
                return purged

    # -- background loops ------------------------------------------------------------

    async def _run(self) -> None:
        """Relay whenever woken (NOTIFY, reconnect) or every poll interval; back off on errors."""
        backoff = _BACKOFF_MIN
        while True:
            await self._ensure_connected()
            self._wakeup.clear()
            try:
                await self.relay_pending()
                await self._purge_if_due()
            except Exception as exc:  # the relay outlives any one failure
                log.warning(
                    "outbox relay failed, retrying in %.1fs: %s",
                    backoff,
                    exc,
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_MIN
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.config.relay_poll_interval)
                # Woken by a commit: under an on-sale every booking commits one, so linger a
                # moment and publish the burst in one pass (one claim, one mark) instead of
                # a pass per message.
                await asyncio.sleep(self.config.relay_linger)

    async def _purge_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + _PURGE_EVERY_SECONDS
        purged = await self.purge_published()
        if purged:
            log.info("purged %d published outbox messages", purged, extra={"purged": purged})

    async def _ensure_connected(self) -> None:
        """Connect once (retrying until the broker answers); aio-pika reconnects after that."""
        while self._connection is None:
            try:
                self._connection, self._exchanges = await connect_publishers(
                    self.settings, self.config, "outbox-relay", self.config.relay_channels
                )
            except Exception as exc:  # the outbox holds the messages meanwhile
                log.warning(
                    "outbox relay cannot reach RabbitMQ, retrying in %.1fs: %s",
                    self.config.reconnect_interval,
                    exc,
                )
                await asyncio.sleep(self.config.reconnect_interval)
                continue
            self._connection.reconnect_callbacks.add(lambda *_: self._wakeup.set())
            self._declared.set()
        await self._connection.connected.wait()

    async def _listen(self) -> None:
        """Hold a LISTEN connection; every NOTIFY (a committed publish) wakes the relay."""
        url = make_url(self.settings.database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set_event, lost))
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wakeup.set())
                self._listening = True
                self._wakeup.set()  # catch up on whatever committed while not listening
                await lost.wait()
                log.warning("outbox LISTEN connection lost; polling until it is back")
            except Exception as exc:  # polling covers us meanwhile
                log.warning("outbox LISTEN connection failed: %s", exc)
            finally:
                self._listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(self.config.reconnect_interval)
