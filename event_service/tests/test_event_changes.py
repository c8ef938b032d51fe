"""What an organizer may change once tickets are out, and how buyers hear of it.

Once any seat is held or sold, the date may not move into the past or closer than
``RESCHEDULE_MIN_NOTICE_SECONDS`` (24 h) to now; every change of date or venue is
announced as ``event_changed``, written to the outbox in the update's own transaction and
published by event_service's relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from sqlalchemy import select

from event_service.tests.conftest import MODES, VHOST, Service
from ticketing_common.messaging.schema import outbox_messages


def _in(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def _update(events: Service, event_id: int, **body: Any) -> Any:
    return await events.client.put(f"/api/events/{event_id}", json=body, headers=events.organizer())


async def _announced(events: Service) -> list[dict[str, Any]]:
    """The payloads of the event_changed messages in the outbox, oldest first."""
    async with events.app.state.sessionmaker() as session:
        rows = await session.execute(
            select(outbox_messages.c.envelope)
            .where(outbox_messages.c.routing_key == "event_changed")
            .order_by(outbox_messages.c.id)
        )
        return [envelope["payload"] for envelope in rows.scalars()]


async def test_with_a_seat_held_the_date_may_not_move_closer_than_a_day(events: Service) -> None:
    event = await events.create_event()
    await events.hold(event["id"], token="buyer", seat_ids=["vip-1-1"])

    response = await _update(events, event["id"], date=_in(23))

    assert response.status_code == 409, response.text
    body = response.json()
    assert body["code"] == "reschedule_too_soon"
    assert "24 hours" in body["error"]
    assert datetime.fromisoformat(body["details"]["earliest_date"]) > datetime.now(UTC)
    assert (await events.event(event["id"]))["date"] == event["date"]
    assert await _announced(events) == []


async def test_with_a_seat_sold_the_date_may_not_move_closer_than_a_day(events: Service) -> None:
    event = await events.create_event()
    await events.hold(event["id"], token="buyer", ticket_class="normal", count=2)
    assert (await events.confirm(event["id"], "buyer", booking_id=7)).status_code == 200

    soon = await _update(events, event["id"], date=_in(1))
    later = await _update(events, event["id"], date=_in(25))

    assert soon.status_code == 409
    assert soon.json()["code"] == "reschedule_too_soon"
    assert later.status_code == 200, later.text


async def test_the_date_never_moves_into_the_past(events: Service) -> None:
    event = await events.create_event()

    response = await _update(events, event["id"], date=_in(-1))

    assert response.status_code == 400
    assert "future" in response.json()["error"]


async def test_without_tickets_out_the_date_may_move_to_any_future_time(events: Service) -> None:
    event = await events.create_event()
    await events.hold(event["id"], token="gone", seat_ids=["vip-1-1"])
    await events.release(event["id"], "gone")

    response = await _update(events, event["id"], date=_in(1))

    assert response.status_code == 200, response.text


async def test_a_date_far_enough_ahead_and_a_new_venue_are_announced(events: Service) -> None:
    event = await events.create_event(title="Jazz Night", location="Addis Ababa")
    await events.hold(event["id"], token="buyer", seat_ids=["vip-1-1"])
    new_date = _in(48)

    response = await _update(events, event["id"], date=new_date, location="Hawassa")

    assert response.status_code == 200, response.text
    [announced] = await _announced(events)
    assert announced["event_id"] == event["id"]
    assert announced["organizer_id"] == event["organizer_id"]
    assert announced["title"] == "Jazz Night"
    assert datetime.fromisoformat(announced["old_date"]) == datetime.fromisoformat(event["date"])
    assert datetime.fromisoformat(announced["new_date"]) == datetime.fromisoformat(new_date)
    assert (announced["old_venue"], announced["new_venue"]) == ("Addis Ababa", "Hawassa")
    assert datetime.fromisoformat(announced["changed_at"]) <= datetime.now(UTC)


async def test_changes_that_move_nothing_announce_nothing(events: Service) -> None:
    event = await events.create_event(location="Addis Ababa")

    retitled = await _update(events, event["id"], title="New title", price_vip="10.00")
    same_place = await _update(events, event["id"], location="Addis Ababa", date=event["date"])

    assert retitled.status_code == same_place.status_code == 200
    assert await _announced(events) == []


async def test_event_changed_is_published_to_the_exchange(events: Service) -> None:
    """The relay runs in event_service now: the outbox row reaches RabbitMQ.

    This suite runs an app per Redis mode on one database, each publishing to its own
    vhost, and either relay may take the row: both vhosts are watched.
    """
    async with contextlib.AsyncExitStack() as stack:
        queues = []
        for mode in MODES:
            url = events.settings.rabbitmq_url.rsplit("/", 1)[0] + f"/{VHOST}_{mode}"
            connection = await aio_pika.connect_robust(url)
            stack.push_async_callback(connection.close)
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                events.settings.rabbitmq_exchange, aio_pika.ExchangeType.TOPIC, passive=True
            )
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, routing_key="event_changed")
            queues.append(queue)
        event = await events.create_event(location="Addis Ababa")

        response = await _update(events, event["id"], location="Bahir Dar")
        assert response.status_code == 200, response.text

        envelope = json.loads((await _next_message(queues)).body)
        assert envelope["type"] == "event_changed"
        assert envelope["producer"] == "event_service"
        assert envelope["payload"]["event_id"] == event["id"]
        assert envelope["payload"]["new_venue"] == "Bahir Dar"


async def _next_message(
    queues: Sequence[aio_pika.abc.AbstractQueue],
) -> aio_pika.abc.AbstractIncomingMessage:
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        for queue in queues:
            message = await queue.get(no_ack=True, fail=False)
            if message is not None:
                return message
        assert asyncio.get_running_loop().time() < deadline, "event_changed never published"
        await asyncio.sleep(0.05)
