"""Each notification is emailed once: retried while SMTP is down, never sent twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service import delivery_log, emails
from notification_service.errors import DeliveryAbandoned, DeliveryRetry
from notification_service.models import Notification, NotificationType
from notification_service.service import (
    NotificationKey,
    Notifier,
    OutgoingEmail,
    deliver,
)
from notification_service.tests.conftest import new_user_id, notification_of
from notification_service.tests.smtp import SmtpSink
from ticketing_common.errors import ServiceUnavailable

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


def verification_for(recipient: str, code: str = "123456") -> OutgoingEmail:
    return OutgoingEmail(recipient, emails.verification_email(code, EXPIRES))


def new_key() -> NotificationKey:
    return NotificationKey(uuid.uuid4(), NotificationType.EMAIL_VERIFICATION, user_id=new_user_id())


def recipient_for(key: NotificationKey) -> str:
    return f"user-{key.message_id.hex[:10]}@example.com"


async def send(notifier: Notifier, key: NotificationKey, *, last_try: bool = False) -> None:
    async def compose() -> OutgoingEmail:
        return verification_for(recipient_for(key))

    await deliver(notifier, key, compose, last_try=last_try)


async def test_a_notification_is_emailed_and_recorded_as_sent(
    notifier: Notifier, smtp: SmtpSink, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = new_key()

    await send(notifier, key)

    [received] = smtp.to(recipient_for(key))
    assert "Your verification code: 123456" in received.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert received["Message-ID"].strip() == f"<email_verification.{key.message_id}@example.com>"
    row = await notification_of(sessionmaker, key.message_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.recipient == recipient_for(key)
    assert row.subject == "Verify your email address"
    assert row.sent_at is not None


async def test_delivering_the_same_message_again_sends_nothing(
    notifier: Notifier, smtp: SmtpSink, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = new_key()

    await send(notifier, key)
    await send(notifier, key)

    assert len(smtp.to(recipient_for(key))) == 1
    assert (await notification_of(sessionmaker, key.message_id)).attempts == 1


async def test_smtp_down_is_retried_and_the_email_then_arrives_exactly_once(
    notifier: Notifier, smtp: SmtpSink, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = new_key()
    smtp.mode = "down"

    with pytest.raises(DeliveryRetry):
        await send(notifier, key)
    failed_try = await notification_of(sessionmaker, key.message_id)
    smtp.mode = "accept"
    await send(notifier, key)
    await send(notifier, key)

    assert (failed_try.status, failed_try.attempts) == ("retrying", 1)
    assert "421" in (failed_try.last_error or "")
    assert len(smtp.to(recipient_for(key))) == 1
    row = await notification_of(sessionmaker, key.message_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


async def test_the_last_failed_try_marks_the_notification_failed(
    notifier: Notifier, smtp: SmtpSink, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = new_key()
    smtp.mode = "down"

    with pytest.raises(DeliveryRetry):
        await send(notifier, key)
    with pytest.raises(DeliveryAbandoned):
        await send(notifier, key, last_try=True)

    row = await notification_of(sessionmaker, key.message_id)
    assert (row.status, row.attempts) == ("failed", 2)
    assert smtp.to(recipient_for(key)) == []


async def test_an_email_the_server_refuses_for_good_fails_at_once(
    notifier: Notifier, smtp: SmtpSink, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = new_key()
    smtp.mode = "reject"

    with pytest.raises(DeliveryAbandoned, match="550"):
        await send(notifier, key)

    row = await notification_of(sessionmaker, key.message_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.recipient == recipient_for(key)


async def test_a_detail_that_cannot_be_fetched_is_a_retry_not_a_crash(
    notifier: Notifier, smtp: SmtpSink, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = new_key()

    async def compose_without_auth() -> OutgoingEmail:
        raise ServiceUnavailable("dependency unavailable: http://auth")

    with pytest.raises(DeliveryRetry, match="dependency unavailable"):
        await deliver(notifier, key, compose_without_auth, last_try=False)
    await send(notifier, key)

    assert len(smtp.to(recipient_for(key))) == 1
    assert (await notification_of(sessionmaker, key.message_id)).status == "sent"


async def test_two_deliveries_of_one_message_at_once_send_one_email(
    notifier: Notifier, smtp: SmtpSink
) -> None:
    key = new_key()

    outcomes = await asyncio.gather(
        send(notifier, key), send(notifier, key), return_exceptions=True
    )

    assert len(smtp.to(recipient_for(key))) == 1
    assert {type(o).__name__ for o in outcomes} <= {"DeliveryRetry", "NoneType"}


async def test_deliveries_of_one_message_racing_a_slow_first_try_wait_for_it(
    notifier: Notifier, smtp: SmtpSink, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = new_key()

    async def slow_compose() -> OutgoingEmail:
        await asyncio.sleep(0.3)
        return verification_for(recipient_for(key))

    first = asyncio.create_task(deliver(notifier, key, slow_compose, last_try=False))
    await asyncio.sleep(0.05)  # the first try has claimed it
    racing = await asyncio.gather(*(send(notifier, key) for _ in range(5)), return_exceptions=True)
    await first

    assert [type(o).__name__ for o in racing] == ["DeliveryRetry"] * 5
    assert len(smtp.to(recipient_for(key))) == 1
    row = await notification_of(sessionmaker, key.message_id)
    assert (row.status, row.attempts) == ("sent", 1)


async def test_a_try_left_by_a_crashed_replica_is_taken_over_once_its_lease_ran_out(
    notifier: Notifier, smtp: SmtpSink, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = new_key()
    smtp.mode = "down"
    with pytest.raises(DeliveryRetry):
        await send(notifier, key)
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Notification)
            .where(Notification.message_id == key.message_id)
            .values(status="sending", lease_until=datetime.now(UTC) + timedelta(minutes=1))
        )
    smtp.mode = "accept"

    with pytest.raises(DeliveryRetry, match="in progress"):
        await send(notifier, key)
    await expire_lease(sessionmaker, key)
    await send(notifier, key)

    assert len(smtp.to(recipient_for(key))) == 1


async def test_an_interrupted_try_frees_the_notification_for_the_next_one(
    notifier: Notifier, smtp: SmtpSink, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = new_key()

    async def compose_that_hangs() -> OutgoingEmail:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await deliver(notifier, key, compose_that_hangs, last_try=False)
    interrupted = await notification_of(sessionmaker, key.message_id)
    await send(notifier, key)

    assert interrupted.status == "retrying"
    assert len(smtp.to(recipient_for(key))) == 1


@pytest.mark.parametrize(
    "blip",
    [
        ConnectionRefusedError("PostgreSQL is restarting"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.InterfaceError("connection is closed"),
    ],
    ids=["refused", "starting_up", "connection_closed"],
)
async def test_an_accepted_email_is_recorded_sent_through_a_database_blip(
    notifier: Notifier,
    smtp: SmtpSink,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    blip: Exception,
) -> None:
    key = new_key()
    real_mark_sent = delivery_log.mark_sent
    failures = {"left": 2}

    async def mark_sent_failing_twice(*args: Any, **values: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise blip
        await real_mark_sent(*args, **values)

    monkeypatch.setattr(delivery_log, "mark_sent", mark_sent_failing_twice)
    await send(notifier, key)
    monkeypatch.undo()
    await send(notifier, key)  # the redelivery after the blip finds it sent

    assert failures["left"] == 0
    assert (await notification_of(sessionmaker, key.message_id)).status == "sent"
    assert len(smtp.to(recipient_for(key))) == 1


class Crash(BaseException):
    """The process dies here: nothing after it runs, not even the interrupted-try record."""


async def test_a_crash_between_the_servers_250_and_the_sent_record_resends_once_the_lease_ran_out(
    notifier: Notifier,
    smtp: SmtpSink,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = new_key()

    async def die(*args: Any, **values: Any) -> None:
        raise Crash

    monkeypatch.setattr(delivery_log, "mark_sent", die)
    with pytest.raises(Crash):
        await send(notifier, key)
    monkeypatch.undo()
    left_by_the_crash = await notification_of(sessionmaker, key.message_id)

    with pytest.raises(DeliveryRetry, match="in progress"):
        await send(notifier, key)  # a redelivery within the lease waits
    await expire_lease(sessionmaker, key)
    await send(notifier, key)
    await send(notifier, key)

    assert (left_by_the_crash.status, left_by_the_crash.attempts) == ("sending", 1)
    row = await notification_of(sessionmaker, key.message_id)
    assert (row.status, row.attempts) == ("sent", 2)
    # The known window: sent twice, as the same message to anything that dedups.
    copies = smtp.to(recipient_for(key))
    assert len(copies) == 2
    assert {str(c["Message-ID"]).strip() for c in copies} == {row.email_message_id}


async def test_a_try_that_lost_its_lease_does_not_undo_the_email_its_successor_sent(
    notifier: Notifier, smtp: SmtpSink, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = new_key()
    stalled, resume = asyncio.Event(), asyncio.Event()

    async def compose_that_stalls_then_fails() -> OutgoingEmail:
        stalled.set()
        await resume.wait()
        raise ServiceUnavailable("dependency unavailable: http://auth")

    slow = asyncio.create_task(
        deliver(notifier, key, compose_that_stalls_then_fails, last_try=False)
    )
    await stalled.wait()
    await expire_lease(sessionmaker, key)
    await send(notifier, key)  # takes it over, sends, records sent
    resume.set()
    with pytest.raises(DeliveryRetry):
        await slow
    await send(notifier, key)  # the stalled try's redelivery

    row = await notification_of(sessionmaker, key.message_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert len(smtp.to(recipient_for(key))) == 1


async def expire_lease(
    sessionmaker: async_sessionmaker[AsyncSession], key: NotificationKey
) -> None:
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Notification)
            .where(Notification.message_id == key.message_id)
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
