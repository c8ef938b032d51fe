"""Outbox, relay and idempotent consumers against the real PostgreSQL and RabbitMQ (DESIGN §8).

Everything runs in the vhost ``ticketing_msg_pytest`` and the database
``messaging_pytest``; each test gets its own exchange and service names, so its queues are
its own. The crash tests run the relay and consumers as separate processes
(``messaging_worker``) and kill them, or stop the RabbitMQ application, for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
import typing
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ticketing_common.app import create_service_app
from ticketing_common.db import SessionDep, create_engine, create_sessionmaker
from ticketing_common.messaging import (
    Consumer,
    MessageContext,
    MessagingSettings,
    OneStatement,
    OutboxRelay,
    PermanentFailure,
    Subscription,
    messaging_lifecycle,
    publish,
)
from ticketing_common.messaging.contracts import AuditLog, PaymentFailed
from ticketing_common.messaging.envelope import draft_envelope
from ticketing_common.messaging.schema import inbox_messages, messaging_metadata, outbox_messages
from ticketing_common.messaging.topology import consumer_queue_name, dead_letter_queue_name
from ticketing_common.settings import ServiceSettings
from ticketing_common.testing import PYTEST_REDIS_DB, running_app
from ticketing_common.tests.messaging_worker import HANG_MARKER_ENV, effects, record_effect

DB_NAME = "messaging_pytest"
VHOST = "ticketing_msg_pytest"
REPO_ROOT = Path(__file__).resolve().parents[2]

#: short back-offs and polls so failure paths finish within a test
FAST: dict[str, Any] = {
    "max_attempts": 3,
    "retry_delays": (0.2, 0.4),
    "relay_poll_interval": 0.5,
    "reconnect_interval": 0.5,
    "startup_wait": 10.0,
    "shutdown_grace": 2.0,
    "handler_timeout": 10.0,
}

Handler = Callable[[MessageContext, Any], Awaitable[None]] | OneStatement[Any]


def fast_config(**overrides: Any) -> MessagingSettings:
    return MessagingSettings(**{**FAST, **overrides})


def audit(seq: int, **details: Any) -> AuditLog:
    return AuditLog(action="test.event", service="messaging_tests", details={"seq": seq, **details})


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)


def _psql(sql: str) -> None:
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "postgres",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def service_settings(service: str, exchange: str, *, quorum: bool = False) -> ServiceSettings:
    return ServiceSettings(
        service_name=service,
        DB_NAME=DB_NAME,
        RABBITMQ_VHOST=VHOST,
        RABBITMQ_EXCHANGE=exchange,
        RABBITMQ_QUORUM_QUEUES=quorum,
        REDIS_DB=PYTEST_REDIS_DB,
        APP_ENV="test",
    )


@pytest.fixture(scope="session")
def messaging_database() -> Iterator[None]:
    """A fresh database with the outbox, inbox and effects tables, and a fresh vhost."""
    _psql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{DB_NAME}" OWNER ticketing')
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True, check=False)
    _run("rabbitmqctl", "-q", "add_vhost", VHOST)
    _run("rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")

    async def create_tables() -> None:
        engine = create_engine(service_settings("setup", "unused"))
        async with engine.begin() as conn:
            await conn.run_sync(messaging_metadata.create_all)
            await conn.run_sync(effects.metadata.create_all)
        await engine.dispose()

    asyncio.run(create_tables())
    yield
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True, check=False)


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 15
) -> None:
    deadline = time.monotonic() + timeout
    while not await _holds(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)


async def _holds(check: Callable[[], bool | Awaitable[bool]]) -> bool:
    result = check()
    return await result if inspect.isawaitable(result) else result


def consumed(queue: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "messages_consumed_total", {"queue": queue, "outcome": outcome}
    )
    return value or 0.0


class Bench:
    """One test's corner of the broker and database: its exchange, services and helpers."""

    def __init__(self, engine: AsyncEngine, stack: contextlib.AsyncExitStack) -> None:
        self.engine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
        self.tag = uuid.uuid4().hex[:8]
        self.exchange = f"msgtest.{self.tag}"
        self._stack = stack

    def service(self, role: str) -> str:
        return f"{role}_{self.tag}"

    def queue(self, role: str, routing_key: str = "audit_logs") -> str:
        return consumer_queue_name(self.service(role), routing_key)

    def settings(self, role: str, *, quorum: bool = False) -> ServiceSettings:
        return service_settings(self.service(role), self.exchange, quorum=quorum)

    async def start_relay(
        self, *, config: MessagingSettings | None = None, quorum: bool = False
    ) -> OutboxRelay:
        settings = self.settings("producer", quorum=quorum)
        engine = create_engine(settings)
        self._stack.push_async_callback(engine.dispose)
        relay = OutboxRelay(settings, engine, config or fast_config())
        await relay.start()
        self._stack.push_async_callback(relay.stop)
        async with asyncio.timeout(10):
            await relay.wait_connected()
            while not relay.listening:
                await asyncio.sleep(0.02)
        return relay

    async def start_consumer(
        self,
        role: str,
        handlers: dict[str, Handler],
        *,
        config: MessagingSettings | None = None,
        quorum: bool = False,
    ) -> Consumer:
        consumer = Consumer(
            settings=self.settings(role, quorum=quorum),
            sessionmaker=self.sessionmaker,
            subscriptions=[Subscription(key, handler) for key, handler in handlers.items()],
            app=FastAPI(),
            config=config or fast_config(),
        )
        await consumer.start()
        self._stack.push_async_callback(consumer.stop)
        async with asyncio.timeout(10):
            await consumer.wait_ready()
        return consumer

    async def publish_audits(
        self, seqs: list[int], *, rollback: bool = False, **details: Any
    ) -> list[uuid.UUID]:
        async with self.sessionmaker() as session:
            ids = [await publish(session, "audit_logs", audit(seq, **details)) for seq in seqs]
            if rollback:
                await session.rollback()
            else:
                await session.commit()
        return ids

    async def effects(self) -> dict[str, list[int]]:
        """consumer queue -> seqs it applied (a duplicate would show twice)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(effects.c.consumer, effects.c.seq).order_by(effects.c.seq)
            )
            applied: dict[str, list[int]] = {}
            for consumer, seq in rows:
                applied.setdefault(consumer, []).append(seq)
            return applied

    async def scalar(self, query: sa.Select[Any]) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar_one()

    async def unpublished(self) -> int:
        t = outbox_messages.c
        return int(
            await self.scalar(
                sa.select(sa.func.count())
                .select_from(outbox_messages)
                .where(t.published_at.is_(None))
            )
        )

    async def has_effects(self, expected: dict[str, list[int]]) -> bool:
        return await self.effects() == expected

    async def send_raw(self, body: bytes, routing_key: str = "audit_logs") -> None:
        """Put a message on the exchange as a foreign (or buggy) producer would."""
        connection = await aio_pika.connect(self.settings("raw").rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(self.exchange)
            await exchange.publish(aio_pika.Message(body), routing_key)

    async def take_all(self, queue_name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        connection = await aio_pika.connect(self.settings("raw").rabbitmq_url)
        taken = []
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(queue_name)
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                taken.append(message)
        return taken


@pytest.fixture
async def bench(messaging_database: None) -> AsyncIterator[Bench]:
    engine = create_engine(service_settings("bench", "unused"))
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "TRUNCATE outbox_messages, inbox_messages, messaging_test_effects RESTART IDENTITY"
            )
        )
    try:
        async with contextlib.AsyncExitStack() as stack:
            yield Bench(engine, stack)
    finally:
        await engine.dispose()


class Workers:
    """Relay and consumer processes of a test; whatever is still running is ended after it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []

    async def start(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        relay: bool = False,
        consume: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        ready = self.directory / f"{name}.ready"
        log_path = self.directory / f"{name}.log"
        command = [
            sys.executable,
            "-m",
            "ticketing_common.tests.messaging_worker",
            "--ready-file",
            str(ready),
        ]
        if relay:
            command.append("--relay")
        for key in consume:
            command += ["--consume", key]
        environment = {
            **os.environ,
            "SERVICE_NAME": settings.service_name,
            "DB_NAME": settings.db_name,
            "RABBITMQ_VHOST": settings.rabbitmq_vhost,
            "RABBITMQ_EXCHANGE": settings.rabbitmq_exchange,
            "RABBITMQ_QUORUM_QUEUES": str(settings.rabbitmq_quorum_queues).lower(),
            "MESSAGING_RELAY_POLL_INTERVAL": "0.5",
            "MESSAGING_RECONNECT_INTERVAL": "0.5",
            "MESSAGING_SHUTDOWN_GRACE": "1",
            **(env or {}),
        }
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT
            )
        self.processes.append(process)

        async def is_ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited:\n{log_path.read_text()[-3000:]}")
            return ready.exists()

        await eventually(is_ready, f"worker {name} ready", timeout=25)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def queue_types() -> dict[str, str]:
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", VHOST, "name", "type", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return dict(line.split("\t") for line in listed.splitlines() if "\t" in line)


# -- outbox and relay ---------------------------------------------------------------------


@pytest.mark.parametrize("quorum", [False, True], ids=["classic", "quorum"])
async def test_rolled_back_publish_is_never_delivered_and_committed_one_reaches_every_consumer(
    bench: Bench, quorum: bool
) -> None:
    await bench.start_consumer("alpha", {"audit_logs": record_effect}, quorum=quorum)
    await bench.start_consumer("beta", {"audit_logs": record_effect}, quorum=quorum)
    await bench.start_relay(quorum=quorum)

    await bench.publish_audits([1], rollback=True)
    await bench.publish_audits([2])

    both = {bench.queue("alpha"): [2], bench.queue("beta"): [2]}
    await eventually(lambda: bench.has_effects(both), "seq 2 applied by alpha and beta")
    assert await bench.scalar(sa.select(sa.func.count()).select_from(outbox_messages)) == 1
    await asyncio.sleep(0.5)
    assert await bench.effects() == both

    expected = "quorum" if quorum else "classic"
    types = queue_types()
    own = {name: kind for name, kind in types.items() if bench.tag in name}
    assert bench.queue("alpha") in own
    assert dead_letter_queue_name(bench.service("alpha")) in own
    assert any(".retry." in name for name in own)
    assert set(own.values()) == {expected}, own


async def test_publish_refuses_a_payload_that_is_not_the_schema_of_its_routing_key(
    bench: Bench,
) -> None:
    async with bench.sessionmaker() as session:
        with pytest.raises(TypeError, match="AuditLog"):
            await publish(
                session,
                "audit_logs",
                PaymentFailed(
                    payment_id=1, booking_id=1, user_id=1, tx_ref="tx", reason="declined"
                ),
            )
        with pytest.raises(ValueError, match="unknown routing key"):
            await publish(session, "seats_exploded", audit(1))


async def test_relay_wakes_on_commit_without_waiting_for_its_poll(bench: Bench) -> None:
    await bench.start_consumer("alpha", {"audit_logs": record_effect})
    await bench.start_relay(config=fast_config(relay_poll_interval=120))
    await asyncio.sleep(0.3)  # the relay's start-up pass is over; it now sleeps until woken

    started = time.monotonic()
    await bench.publish_audits([1])
    await eventually(lambda: bench.has_effects({bench.queue("alpha"): [1]}), "seq 1", timeout=5)
    assert time.monotonic() - started < 5


async def test_relay_spreads_a_batch_over_its_channels(bench: Bench) -> None:
    await bench.start_consumer("alpha", {"audit_logs": record_effect})
    relay = await bench.start_relay(config=fast_config(relay_channels=3))
    # aiormq's channels, which count the publishes they sent (delivery_tag)
    channels: list[Any] = [
        await typing.cast(aio_pika.Exchange, exchange).channel.get_underlay_channel()
        for exchange in relay._exchanges
    ]
    assert len({channel.number for channel in channels}) == 3
    before = [channel.delivery_tag for channel in channels]

    await bench.publish_audits(list(range(30)))  # one commit: one batch

    await eventually(
        lambda: bench.has_effects({bench.queue("alpha"): list(range(30))}), "all 30", timeout=10
    )
    # every channel carried its share, each message confirmed once
    assert [c.delivery_tag - b for c, b in zip(channels, before, strict=True)] == [10, 10, 10]


async def test_relay_polls_for_messages_whose_notification_was_missed(bench: Bench) -> None:
    await bench.start_consumer("alpha", {"audit_logs": record_effect})
    await bench.start_relay(config=fast_config(relay_poll_interval=0.3))
    await asyncio.sleep(0.3)

    draft = draft_envelope("audit_logs", audit(7))
    async with bench.engine.begin() as conn:  # an outbox row with no NOTIFY at all
        await conn.execute(
            sa.insert(outbox_messages).values(
                message_id=uuid.UUID(draft["message_id"]), routing_key="audit_logs", envelope=draft
            )
        )

    await eventually(lambda: bench.has_effects({bench.queue("alpha"): [7]}), "seq 7", timeout=5)


@pytest.mark.parametrize("quorum", [False, True], ids=["classic", "quorum"])
async def test_two_relays_publish_every_message_and_the_inbox_removes_their_duplicates(
    bench: Bench, quorum: bool
) -> None:
    await bench.start_consumer("alpha", {"audit_logs": record_effect}, quorum=quorum)
    relays = [
        await bench.start_relay(config=fast_config(relay_batch_size=7), quorum=quorum)
        for _ in range(2)
    ]

    await asyncio.gather(
        *(bench.publish_audits(list(range(b * 10 + 1, b * 10 + 11))) for b in range(30))
    )
    every_once = {bench.queue("alpha"): list(range(1, 301))}
    await eventually(lambda: bench.has_effects(every_once), "300 messages applied", timeout=30)
    assert sum(relay.published for relay in relays) >= 300
    assert await bench.unpublished() == 0

    # A relay that dies after publishing but before its commit leaves its batch unmarked:
    # the rows go out again, and the consumer drops them as duplicates.
    duplicates_before = consumed(bench.queue("alpha"), "duplicate")
    async with bench.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE outbox_messages SET published_at = NULL WHERE id <= 50"))
    await eventually(
        lambda: consumed(bench.queue("alpha"), "duplicate") >= duplicates_before + 50,
        "50 republished messages seen as duplicates",
    )
    assert await bench.effects() == every_once
    assert await bench.unpublished() == 0


async def test_relay_skips_rows_locked_by_a_stalled_relay_and_publishes_them_once_released(
    bench: Bench,
) -> None:
    await bench.publish_audits(list(range(1, 11)))
    async with bench.engine.connect() as stalled:
        await stalled.begin()
        await stalled.execute(
            sa.text("SELECT id FROM outbox_messages ORDER BY id LIMIT 5 FOR UPDATE")
        )
        await bench.start_consumer("alpha", {"audit_logs": record_effect})
        await bench.start_relay()
        later_five = {bench.queue("alpha"): [6, 7, 8, 9, 10]}
        await eventually(lambda: bench.has_effects(later_five), "the unlocked five applied")
        await stalled.rollback()

    all_ten = {bench.queue("alpha"): list(range(1, 11))}
    await eventually(lambda: bench.has_effects(all_ten), "the released five applied too")


async def test_published_rows_are_purged_after_the_retention_and_unpublished_ones_kept(
    bench: Bench,
) -> None:
    await bench.publish_audits([1, 2, 3])
    async with bench.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE outbox_messages SET published_at = now() - interval '8 days' WHERE id = 1"
            )
        )
        await conn.execute(
            sa.text(
                "UPDATE outbox_messages SET published_at = now() - interval '6 days' WHERE id = 2"
            )
        )
    relay = OutboxRelay(bench.settings("producer"), bench.engine, fast_config())

    assert await relay.purge_published() == 1
    async with bench.engine.connect() as conn:
        left = (await conn.execute(sa.select(outbox_messages.c.id).order_by("id"))).scalars()
        assert list(left) == [2, 3]


# -- consumers: idempotency, retries, dead letters ----------------------------------------


async def test_a_redelivered_message_changes_nothing(bench: Bench) -> None:
    await bench.start_consumer("alpha", {"audit_logs": record_effect})
    body = orjson.dumps({**draft_envelope("audit_logs", audit(3)), "producer": "elsewhere"})

    await asyncio.gather(bench.send_raw(body), bench.send_raw(body))

    queue = bench.queue("alpha")
    await eventually(
        lambda: consumed(queue, "ok") + consumed(queue, "duplicate") == 2,
        "both copies handled",
    )
    assert await bench.effects() == {queue: [3]}
    assert consumed(queue, "duplicate") == 1
    assert await bench.scalar(sa.select(sa.func.count()).select_from(inbox_messages)) == 1


#: ``record_effect`` as one statement with the inbox row; ``$6`` names a seq it refuses
#: (a CHECK-like failure: a division by zero) to show the inbox row goes with the write
_EFFECT_STATEMENT: OneStatement[AuditLog] = OneStatement(
    "INSERT INTO messaging_test_effects (consumer, message_id, seq) "
    "SELECT $2, $1, $4::int + 0 / (CASE WHEN $4::int = $5::int THEN 0 ELSE 1 END) "
    "FROM recorded",
    lambda payload: (payload.details["seq"], payload.details.get("refuse", -1)),
)


async def test_a_one_statement_handler_applies_each_message_once(bench: Bench) -> None:
    await bench.start_consumer("alpha", {"audit_logs": _EFFECT_STATEMENT})
    body = orjson.dumps({**draft_envelope("audit_logs", audit(3)), "producer": "elsewhere"})

    await asyncio.gather(bench.send_raw(body), bench.send_raw(body))
    await bench.start_relay()
    await bench.publish_audits([4, 5])

    queue = bench.queue("alpha")
    await eventually(
        lambda: consumed(queue, "ok") + consumed(queue, "duplicate") == 4, "all four handled"
    )
    assert await bench.effects() == {queue: [3, 4, 5]}
    assert consumed(queue, "duplicate") == 1
    assert await bench.scalar(sa.select(sa.func.count()).select_from(inbox_messages)) == 3


async def test_a_failing_one_statement_handler_keeps_no_inbox_row_and_is_retried(
    bench: Bench,
) -> None:
    await bench.start_consumer("alpha", {"audit_logs": _EFFECT_STATEMENT})
    await bench.start_relay()
    await bench.publish_audits([7], refuse=7)  # fails on every attempt
    await bench.publish_audits([8])

    queue = bench.queue("alpha")
    await eventually(lambda: consumed(queue, "dead_lettered") == 1, "dead-lettered")
    [parked] = await bench.take_all(dead_letter_queue_name(bench.service("alpha")))
    assert parked.headers["x-dead-letter-reason"] == "attempts_exhausted"
    assert "DivisionByZeroError" in str(parked.headers["x-error"])
    assert consumed(queue, "retried") == 2  # FAST: three attempts
    assert await bench.effects() == {queue: [8]}
    # the refused message's inbox row went with its write, each attempt
    assert await bench.scalar(sa.select(sa.func.count()).select_from(inbox_messages)) == 1


async def _record_effect_plus_1000(ctx: MessageContext, payload: AuditLog) -> None:
    """The slow path of :data:`_USUALLY_ONE_STATEMENT`: a transaction, as any handler."""
    await ctx.session.execute(
        sa.insert(effects).values(
            consumer=ctx.queue,
            message_id=ctx.envelope.message_id,
            seq=payload.details["seq"] + 1000,
        )
    )


def _effect_and_fast(payload: AuditLog) -> tuple[object, ...]:
    return payload.details["seq"], payload.details["fast"]


_APPLIED: list[int] = []

#: one statement when the message says ``fast``, else :func:`_record_effect_plus_1000`
_USUALLY_ONE_STATEMENT: OneStatement[AuditLog] = OneStatement(
    "INSERT INTO messaging_test_effects (consumer, message_id, seq) "
    "SELECT $2, $1, $4::int FROM recorded RETURNING seq",
    _effect_and_fast,
    only_if="$5::boolean",
    otherwise=_record_effect_plus_1000,
    applied=_APPLIED.append,
)


async def test_a_one_statement_handler_whose_condition_fails_leaves_the_message_to_its_otherwise(
    bench: Bench,
) -> None:
    _APPLIED.clear()
    await bench.start_consumer("alpha", {"audit_logs": _USUALLY_ONE_STATEMENT})
    fast = orjson.dumps({**draft_envelope("audit_logs", audit(1, fast=True)), "producer": "x"})
    slow = orjson.dumps({**draft_envelope("audit_logs", audit(2, fast=False)), "producer": "x"})

    # each delivered twice, at once
    await asyncio.gather(*(bench.send_raw(body) for body in (fast, fast, slow, slow)))
    await bench.start_relay()
    await bench.publish_audits([3], fast=True)
    await bench.publish_audits([4], fast=False)

    queue = bench.queue("alpha")
    await eventually(
        lambda: consumed(queue, "ok") + consumed(queue, "duplicate") == 6, "all six handled"
    )
    # the fast ones by the statement, the others by the handler: each once
    assert await bench.effects() == {queue: [1, 3, 1002, 1004]}
    assert consumed(queue, "duplicate") == 2
    assert await bench.scalar(sa.select(sa.func.count()).select_from(inbox_messages)) == 4
    assert _APPLIED == [1, 1]  # told of the rows each fast message's statement wrote


def test_a_one_statement_handler_must_write_from_the_inbox_row_and_take_its_payload() -> None:
    with pytest.raises(ValueError, match="come together"):
        OneStatement("SELECT 1 FROM recorded", _effect_and_fast, only_if="true")
    with pytest.raises(ValueError, match="FROM recorded"):
        OneStatement("INSERT INTO t (a) VALUES ($4)", lambda payload: (1,))
    with pytest.raises(TypeError, match="carries AuditLog"):
        Subscription("audit_logs", OneStatement("SELECT 1 FROM recorded", _takes_payment))


def _takes_payment(payload: PaymentFailed) -> tuple[object, ...]:
    return (payload.booking_id,)


@pytest.mark.parametrize("quorum", [False, True], ids=["classic", "quorum"])
async def test_an_always_failing_handler_is_dead_lettered_after_the_configured_attempts_while_others_flow(  # noqa: E501
    bench: Bench, quorum: bool
) -> None:
    calls: Counter[int] = Counter()

    async def apply_unless_poisoned(ctx: MessageContext, payload: AuditLog) -> None:
        calls[payload.details["seq"]] += 1
        if payload.details.get("poison"):
            raise RuntimeError(f"cannot apply seq {payload.details['seq']}")
        await record_effect(ctx, payload)

    config = fast_config(max_attempts=3, retry_delays=(0.3, 3.0))
    await bench.start_consumer(
        "alpha", {"audit_logs": apply_unless_poisoned}, config=config, quorum=quorum
    )
    await bench.start_relay(quorum=quorum)
    queue = bench.queue("alpha")
    dead_letters = dead_letter_queue_name(bench.service("alpha"))

    await bench.publish_audits([0], poison=True)
    await eventually(lambda: calls[0] >= 1, "first poisoned attempt")
    await bench.publish_audits(list(range(1, 21)))
    twenty = {queue: list(range(1, 21))}
    await eventually(lambda: bench.has_effects(twenty), "the 20 good messages applied")
    assert calls[0] < 3, "the good messages had to wait for the poisoned one"

    await eventually(
        lambda: consumed(queue, "dead_lettered") == 1, "poisoned message dead-lettered", timeout=15
    )
    [parked] = await bench.take_all(dead_letters)
    assert calls[0] == 3
    assert parked.headers["x-dead-letter-reason"] == "attempts_exhausted"
    assert parked.headers["x-attempt"] == 3
    assert "RuntimeError: cannot apply seq 0" in str(parked.headers["x-error"])
    assert parked.headers["x-original-queue"] == queue
    assert orjson.loads(parked.body)["payload"]["details"] == {"seq": 0, "poison": True}
    assert consumed(queue, "retried") == 2
    assert consumed(queue, "ok") == 20
    assert (
        REGISTRY.get_sample_value(
            "messages_dead_lettered_total", {"queue": queue, "reason": "attempts_exhausted"}
        )
        == 1
    )
    assert await bench.effects() == twenty


async def test_a_handler_running_past_its_timeout_is_retried(bench: Bench) -> None:
    async def slow_first_time(ctx: MessageContext, payload: AuditLog) -> None:
        await record_effect(ctx, payload)
        if ctx.attempt == 1:
            await asyncio.sleep(30)

    await bench.start_consumer(
        "alpha", {"audit_logs": slow_first_time}, config=fast_config(handler_timeout=0.3)
    )
    await bench.start_relay()
    await bench.publish_audits([6])

    await eventually(lambda: bench.has_effects({bench.queue("alpha"): [6]}), "applied on retry")
    assert consumed(bench.queue("alpha"), "retried") == 1


async def test_a_permanent_failure_is_dead_lettered_at_once(bench: Bench) -> None:
    calls: list[int] = []

    async def refuse(ctx: MessageContext, payload: AuditLog) -> None:
        calls.append(payload.details["seq"])
        await record_effect(ctx, payload)  # rolled back with the failure
        raise PermanentFailure("booking 9 does not exist")

    await bench.start_consumer("alpha", {"audit_logs": refuse})
    await bench.start_relay()
    await bench.publish_audits([9])

    dead_letters = dead_letter_queue_name(bench.service("alpha"))
    await eventually(
        lambda: consumed(bench.queue("alpha"), "dead_lettered") == 1,
        "dead-lettered",
    )
    [parked] = await bench.take_all(dead_letters)
    assert parked.headers["x-dead-letter-reason"] == "permanent_failure"
    assert "booking 9 does not exist" in str(parked.headers["x-error"])
    assert calls == [9]
    assert await bench.effects() == {}


async def test_malformed_messages_are_dead_lettered_and_the_consumer_keeps_going(
    bench: Bench,
) -> None:
    handled: list[int] = []

    async def apply(ctx: MessageContext, payload: AuditLog) -> None:
        handled.append(payload.details["seq"])
        await record_effect(ctx, payload)

    await bench.start_consumer("alpha", {"audit_logs": apply})
    relay = await bench.start_relay()
    valid = draft_envelope("audit_logs", audit(1))
    not_fitting = {
        **valid,
        "message_id": str(uuid.uuid4()),
        "producer": "x",
        "payload": {"service": "no action field"},
    }
    wrong_type = {
        **valid,
        "message_id": str(uuid.uuid4()),
        "producer": "x",
        "type": "payment_failed",
    }
    await bench.send_raw(b"{not json")
    await bench.send_raw(orjson.dumps(not_fitting))
    await bench.send_raw(orjson.dumps(wrong_type))
    await bench.publish_audits([2])
    relay.wake()

    queue = bench.queue("alpha")
    await eventually(lambda: bench.has_effects({queue: [2]}), "the valid message applied")
    await eventually(lambda: consumed(queue, "dead_lettered") == 3, "three dead-lettered")
    parked = await bench.take_all(dead_letter_queue_name(bench.service("alpha")))
    reasons = sorted(str(m.headers["x-error"]) for m in parked)
    assert {m.headers["x-dead-letter-reason"] for m in parked} == {"invalid_message"}
    assert any("payload does not fit AuditLog" in r and "action" in r for r in reasons)
    assert any("envelope type 'payment_failed'" in r for r in reasons)
    assert any("not a valid envelope" in r for r in reasons)
    assert handled == [2]


async def test_a_handlers_publish_commits_with_it_and_vanishes_when_it_fails(bench: Bench) -> None:
    async def charge_back(ctx: MessageContext, payload: AuditLog) -> None:
        seq = payload.details["seq"]
        await publish(
            ctx.session,
            "payment_failed",
            PaymentFailed(
                payment_id=seq, booking_id=seq, user_id=1, tx_ref=f"tx-{seq}", reason="declined"
            ),
        )
        if ctx.attempt == 1:
            raise RuntimeError("fails after publishing, on the first attempt only")

    async def record_failure(ctx: MessageContext, payload: PaymentFailed) -> None:
        await ctx.session.execute(
            sa.insert(effects).values(
                consumer=ctx.queue, message_id=ctx.envelope.message_id, seq=payload.payment_id
            )
        )

    await bench.start_consumer("alpha", {"audit_logs": charge_back})
    await bench.start_consumer("beta", {"payment_failed": record_failure})
    await bench.start_relay()
    await bench.publish_audits([4])

    once = {bench.queue("beta", "payment_failed"): [4]}
    await eventually(lambda: bench.has_effects(once), "the follow-up applied")
    await asyncio.sleep(0.5)
    assert await bench.effects() == once
    assert consumed(bench.queue("alpha"), "retried") == 1


async def test_subscription_refuses_a_handler_typed_for_another_routing_key() -> None:
    async def on_payment_failed(ctx: MessageContext, payload: PaymentFailed) -> None:
        del ctx, payload

    with pytest.raises(TypeError, match="carries AuditLog"):
        Subscription("audit_logs", on_payment_failed)


# -- wiring into a service app -----------------------------------------------------------


async def test_messaging_lifecycle_runs_relay_and_consumer_and_reports_readiness(
    bench: Bench,
) -> None:
    router = APIRouter()

    @router.post("/audits/{seq}")
    async def create_audit(seq: int, session: SessionDep) -> dict[str, str]:
        return {"message_id": str(await publish(session, "audit_logs", audit(seq)))}

    seen: list[tuple[str, str]] = []

    async def apply(ctx: MessageContext, payload: AuditLog) -> None:
        seen.append((ctx.app.state.settings.service_name, ctx.envelope.producer))
        await record_effect(ctx, payload)

    settings = bench.settings("gamma")
    app = create_service_app(
        settings=settings,
        routers=[router],
        lifecycles=[
            messaging_lifecycle(
                subscriptions=[Subscription("audit_logs", apply)], config=fast_config()
            )
        ],
    )
    async with running_app(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["messaging"] == "ok"

        created = await client.post("/audits/5")
        assert created.status_code == 200, created.text

        await eventually(lambda: bench.has_effects({bench.queue("gamma"): [5]}), "seq 5")
        metrics = (await client.get("/metrics")).text
        assert "outbox_backlog " in metrics
        assert 'messages_published_total{routing_key="audit_logs"}' in metrics
        assert (
            f'messages_consumed_total{{outcome="ok",queue="{bench.queue("gamma")}"}} 1.0' in metrics
        )
    assert seen == [(settings.service_name, settings.service_name)]
    async with bench.engine.connect() as conn:
        envelope = (await conn.execute(sa.select(outbox_messages.c.envelope))).scalar_one()
    assert envelope["type"] == "audit_logs"


async def test_readiness_reports_messaging_down_while_rabbitmq_cannot_be_reached(
    messaging_database: None,
) -> None:
    app = create_service_app(
        settings=ServiceSettings(
            service_name="delta_unreachable",
            DB_NAME=DB_NAME,
            RABBITMQ_PORT=1,
            REDIS_DB=PYTEST_REDIS_DB,
            APP_ENV="test",
        ),
        routers=[],
        lifecycles=[messaging_lifecycle(config=fast_config(startup_wait=0.2))],
    )
    async with running_app(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["messaging"].startswith("down")


# -- crashes: killed consumers and a stopped broker ---------------------------------------


@pytest.mark.timeout(90)
@pytest.mark.parametrize("quorum", [False, True], ids=["classic", "quorum"])
async def test_a_consumer_killed_mid_handler_gets_the_message_again_and_applies_it_once(
    bench: Bench, workers: Workers, tmp_path: Path, quorum: bool
) -> None:
    marker = tmp_path / "handler-started"
    await bench.start_relay(quorum=quorum)
    victim = await workers.start(
        "victim",
        bench.settings("alpha", quorum=quorum),
        consume=("audit_logs",),
        env={HANG_MARKER_ENV: str(marker)},
    )
    await bench.publish_audits([1], hang=True)
    await eventually(lambda: marker.exists(), "the handler started")
    assert await bench.effects() == {}  # written, not committed

    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    await workers.start(
        "successor", bench.settings("alpha", quorum=quorum), consume=("audit_logs",)
    )

    once = {bench.queue("alpha"): [1]}
    await eventually(lambda: bench.has_effects(once), "redelivered and applied", timeout=20)
    await asyncio.sleep(0.5)
    assert await bench.effects() == once
    assert await bench.scalar(sa.select(sa.func.count()).select_from(inbox_messages)) == 1


async def _rabbitmqctl(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "-q",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    if process.returncode:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {out.decode()} {err.decode()}")


@pytest.mark.broker_restart
@pytest.mark.timeout(120)
@pytest.mark.parametrize("quorum", [False, True], ids=["classic", "quorum"])
async def test_events_committed_while_rabbitmq_is_stopped_reach_every_consumer_once_after_restart(
    bench: Bench, workers: Workers, quorum: bool
) -> None:
    await workers.start("relay", bench.settings("producer", quorum=quorum), relay=True)
    for role in ("alpha", "beta"):
        await workers.start(role, bench.settings(role, quorum=quorum), consume=("audit_logs",))

    await _rabbitmqctl("stop_app")
    try:
        for batch in range(10):
            await bench.publish_audits(list(range(batch * 10 + 1, batch * 10 + 11)))
        await asyncio.sleep(1)
        assert await bench.unpublished() == 100
    finally:
        await _rabbitmqctl("start_app")
        await _rabbitmqctl("await_startup", "--timeout", "60")

    every_once = list(range(1, 101))
    expected = {bench.queue("alpha"): every_once, bench.queue("beta"): every_once}
    await eventually(
        lambda: bench.has_effects(expected), "100 events at alpha and beta", timeout=60
    )
    assert await bench.unpublished() == 0
    await asyncio.sleep(0.5)
    assert await bench.effects() == expected
