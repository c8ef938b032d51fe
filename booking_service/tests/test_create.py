"""POST /api/bookings: validation, pricing, holds, conflicts and Idempotency-Key."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from booking_service.idempotency import KeyUse, hold_token_for, request_fingerprint
from booking_service.models import Booking, BookingIdempotencyKey, BookingSeat
from booking_service.resources import resources_of
from booking_service.schemas import BookingCreate
from booking_service.tests.conftest import HOLD_TTL_SECONDS, Actor, Stack
from event_service.models import Event
from ticketing_common.db import utcnow
from ticketing_common.internal.models import HoldRequest
from ticketing_common.testing import route_internal_calls


async def _count_bookings(stack: Stack, event_id: int) -> int:
    async with stack.app.state.sessionmaker() as session:
        total = await session.scalar(
            select(func.count()).select_from(Booking).where(Booking.event_id == event_id)
        )
    return int(total or 0)


async def test_booking_reserved_seats_is_pending_and_priced_per_seat_class(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()

    response = await stack.book(buyer, event_id, ["vip-1-4", "normal-2-1", "vvip-1-1"])

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"]
    booking = body["booking"]
    assert booking["status"] == "pending"
    assert booking["user_id"] == buyer.user_id
    assert booking["event_id"] == event_id
    assert booking["total_amount"] == 850  # 250 + 100 + 500, not 3 x the first class
    assert booking["currency"] == "ETB"
    prices = {seat["seat_id"]: seat["price"] for seat in booking["seat_list"]}
    assert prices == {"vip-1-4": 250, "normal-2-1": 100, "vvip-1-1": 500}
    seat = next(s for s in booking["seat_list"] if s["seat_id"] == "vip-1-4")
    assert (seat["ticket_class"], seat["row"], seat["number"]) == ("vip", 1, 4)


async def test_booking_expires_with_its_hold(stack: Stack) -> None:
    event_id = await stack.create_event()
    started = utcnow()

    booking = await stack.booked(stack.actor(), event_id, ["normal-1-1"])

    expires_at = booking["expires_at"]
    internal = await stack.booking(booking["id"])
    assert internal["expires_at"] == expires_at
    expiry = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    assert (
        timedelta(seconds=HOLD_TTL_SECONDS - 2)
        <= expiry - started
        <= timedelta(seconds=HOLD_TTL_SECONDS + 2)
    )


async def test_booked_seats_are_held_in_the_seat_map(stack: Stack) -> None:
    event_id = await stack.create_event()

    await stack.booked(stack.actor(), event_id, ["vip-1-1", "vip-1-2"])

    statuses = await stack.seat_statuses(event_id)
    assert statuses["vip-1-1"] == "held"
    assert statuses["vip-1-2"] == "held"
    assert statuses["vip-1-3"] == "available"


async def test_general_booking_holds_the_requested_count_of_a_class(stack: Stack) -> None:
    event_id = await stack.create_event()

    response = await stack.book(stack.actor(), event_id, seat_count=3, ticket_class="vip")

    assert response.status_code == 201, response.text
    booking = response.json()["booking"]
    assert booking["total_amount"] == 750
    assert booking["seat_count"] == 3
    assert {seat["ticket_class"] for seat in booking["seat_list"]} == {"vip"}
    statuses = await stack.seat_statuses(event_id)
    assert all(statuses[seat["seat_id"]] == "held" for seat in booking["seat_list"])


async def test_general_booking_beyond_what_is_left_gets_409(stack: Stack) -> None:
    event_id = await stack.create_event(seats_vvip=4)
    await stack.booked(stack.actor(), event_id, ["vvip-1-1", "vvip-1-2"])

    response = await stack.book(stack.actor(), event_id, seat_count=3, ticket_class="vvip")

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "seats_unavailable"


async def test_second_buyer_of_same_seat_gets_409(stack: Stack) -> None:
    event_id = await stack.create_event()
    first = await stack.booked(stack.actor(), event_id, ["vip-1-1"])

    response = await stack.book(stack.actor(), event_id, ["vip-1-2", "vip-1-1"])

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "seats_unavailable"
    assert await _count_bookings(stack, event_id) == 1
    # All or nothing: the free seat of the refused request is not left held.
    statuses = await stack.seat_statuses(event_id)
    assert statuses["vip-1-2"] == "available"
    assert (await stack.booking(first["id"]))["status"] == "pending"


async def test_buyers_racing_for_one_seat_get_one_booking(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyers = [stack.actor() for _ in range(20)]

    responses = await asyncio.gather(*(stack.book(b, event_id, ["vvip-1-1"]) for b in buyers))

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 19
    assert await _count_bookings(stack, event_id) == 1


async def test_client_total_that_differs_from_the_price_is_refused(stack: Stack) -> None:
    event_id = await stack.create_event()

    response = await stack.book(stack.actor(), event_id, ["vip-1-1"], total_amount="1.00")

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "amount_mismatch"
    assert (await stack.seat_statuses(event_id))["vip-1-1"] == "available"
    assert await _count_bookings(stack, event_id) == 0


async def test_client_total_equal_to_the_price_is_accepted(stack: Stack) -> None:
    event_id = await stack.create_event()

    response = await stack.book(stack.actor(), event_id, ["vip-1-1"], total_amount="250")

    assert response.status_code == 201, response.text
    assert response.json()["booking"]["total_amount"] == 250


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"seats": [{"id": "vip-1-1", "row": 2}]}, "row"),
        ({"seats": [{"id": "vip-1-1", "number": 3}]}, "number"),
        ({"seats": [{"id": "balcony-1-1"}]}, "seats"),
        ({"seats": [{"id": "vip-1-1"}, {"id": "vip-1-1"}]}, "more than once"),
        ({"seats": []}, "seats"),
        ({}, "seat_count"),
        ({"seat_count": 0, "ticket_class": "vip"}, "seat_count"),
        ({"seats": [{"id": "vip-1-1"}], "seat_count": 2}, "seat_count is 2 but 1 seats"),
        ({"seats": [{"id": "vip-1-1"}], "ticket_class": "vvip"}, "not of ticket_class vvip"),
        ({"seats": [{"id": "vip-1-1"}], "amount": -1}, "amount"),
        ({"seats": [{"id": "vip-1-1"}], "amount": "NaN"}, "amount"),
        ({"seats": [{"id": "vip-1-1"}], "total_amount": 1e300}, "total_amount"),
        ({"seat_count": 1, "ticket_class": "gold"}, "ticket_class"),
        ({"seat_count": True, "ticket_class": "vip"}, "seat_count"),
        ({"seat_count": "2", "ticket_class": "vip"}, "seat_count"),
    ],
)
async def test_malformed_booking_request_is_400(
    stack: Stack, body: dict[str, object], fragment: str
) -> None:
    buyer = stack.actor()

    response = await stack.client.post(
        "/api/bookings", json={"event_id": 1, **body}, headers=buyer.headers
    )

    assert response.status_code == 400, response.text
    assert fragment in response.text


async def test_seat_outside_the_event_layout_is_400(stack: Stack) -> None:
    event_id = await stack.create_event(seats_vip=10, seats_per_row=10)

    response = await stack.book(stack.actor(), event_id, ["vip-1-1", "vip-2-1", "vip-1-11"])

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "unknown_seats"
    assert body["details"]["seat_ids"] == ["vip-1-11", "vip-2-1"]


async def test_more_seats_than_one_booking_allows_is_400(stack: Stack) -> None:
    event_id = await stack.create_event(seats_normal=20)
    seats = [f"normal-1-{n}" for n in range(1, 11)] + ["normal-2-1"]

    response = await stack.book(stack.actor(), event_id, seats)

    assert response.status_code == 400, response.text
    assert "at most 10 seats" in response.json()["error"]


async def test_booking_for_unknown_event_is_404(stack: Stack) -> None:
    response = await stack.book(stack.actor(), 987_654_321, ["vip-1-1"])

    assert response.status_code == 404, response.text


async def test_booking_for_a_past_event_is_409(stack: Stack) -> None:
    event_id = await stack.create_event()
    async with stack.event_app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Event).where(Event.id == event_id).values(date=utcnow() - timedelta(hours=1))
        )
    await stack.event_app.state.redis.flushdb()  # drop event_service's cached copy

    response = await stack.book(stack.actor(), event_id, ["vip-1-1"])

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "event_started"


async def test_booking_needs_a_valid_access_token(stack: Stack) -> None:
    response = await stack.client.post(
        "/api/bookings", json={"event_id": 1, "seats": [{"id": "vip-1-1"}]}
    )
    assert response.status_code == 401

    response = await stack.client.post(
        "/api/bookings",
        json={"event_id": 1, "seats": [{"id": "vip-1-1"}]},
        headers={"Authorization": "Bearer not-a-token"},
    )
    assert response.status_code == 401


async def test_huge_event_id_is_400_not_500(stack: Stack) -> None:
    response = await stack.book(stack.actor(), 2**70, ["vip-1-1"])

    assert response.status_code == 400


async def test_hold_is_released_when_the_database_refuses_the_booking(stack: Stack) -> None:
    """The gate said free, PostgreSQL knows better: 409, and the new hold does not linger."""
    event_id = await stack.create_event()
    first = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    # The gate forgets the first booking's hold (as after a Redis wipe); booking_db keeps it.
    await stack.release_hold(event_id, (await stack.booking(first["id"]))["hold_token"])

    response = await stack.book(stack.actor(), event_id, ["vip-1-2", "vip-1-1"])

    assert response.status_code == 409, response.text
    statuses = await stack.seat_statuses(event_id)
    assert statuses["vip-1-1"] == "available"
    assert statuses["vip-1-2"] == "available"
    assert await _count_bookings(stack, event_id) == 1
    assert (await stack.booking(first["id"]))["status"] == "pending"


async def test_pending_booking_whose_hold_lapsed_does_not_block_its_seat(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the expiry loop runs, a lapsed booking gives way to the next buyer."""
    event_id = await stack.create_event()
    monkeypatch.setattr(stack.settings, "hold_ttl_seconds", 1)
    lapsed = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await asyncio.sleep(1.3)

    response = await stack.book(stack.actor(), event_id, ["vip-1-1"])

    assert response.status_code == 201, response.text
    assert (await stack.booking(lapsed["id"]))["status"] == "expired"
    assert await stack.outbox("booking_cancelled", booking_id=lapsed["id"], reason="expired")


# --- Idempotency-Key ---------------------------------------------------------------


async def test_retry_with_same_idempotency_key_returns_the_same_booking(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    key = str(uuid.uuid4())

    first = await stack.book(buyer, event_id, ["vip-1-1", "vip-1-2"], key=key)
    again = await stack.book(buyer, event_id, ["vip-1-2", "vip-1-1"], key=key)

    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json()["booking"]["id"] == first.json()["booking"]["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await _count_bookings(stack, event_id) == 1


async def test_concurrent_retries_with_one_idempotency_key_make_one_booking(
    stack: Stack,
) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    key = str(uuid.uuid4())

    responses = await asyncio.gather(
        *(stack.book(buyer, event_id, ["vvip-1-1"], key=key) for _ in range(8))
    )

    assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
    assert len({r.json()["booking"]["id"] for r in responses}) == 1
    assert await _count_bookings(stack, event_id) == 1


async def test_without_idempotency_key_a_repeated_post_gets_409(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()

    first = await stack.book(buyer, event_id, ["vip-1-1"])
    second = await stack.book(buyer, event_id, ["vip-1-1"])

    assert first.status_code == 201
    assert second.status_code == 409
    assert await _count_bookings(stack, event_id) == 1


async def test_idempotency_key_is_per_user(stack: Stack) -> None:
    event_id = await stack.create_event()
    key = str(uuid.uuid4())

    mine = await stack.book(stack.actor(), event_id, ["vip-1-1"], key=key)
    theirs = await stack.book(stack.actor(), event_id, ["vip-1-2"], key=key)

    assert mine.status_code == 201
    assert theirs.status_code == 201
    assert mine.json()["booking"]["id"] != theirs.json()["booking"]["id"]


async def test_idempotency_key_reused_for_another_request_is_422(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    key = str(uuid.uuid4())
    await stack.book(buyer, event_id, ["vip-1-1"], key=key)

    response = await stack.book(buyer, event_id, ["vip-1-3"], key=key)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "idempotency_key_reused"
    assert (await stack.seat_statuses(event_id))["vip-1-3"] == "available"


async def test_idempotency_key_older_than_a_day_books_anew(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    key = str(uuid.uuid4())
    first = await stack.book(buyer, event_id, ["vip-1-1"], key=key)
    async with stack.app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(BookingIdempotencyKey)
            .where(BookingIdempotencyKey.key == key)
            .values(created_at=utcnow() - timedelta(hours=25))
        )

    again = await stack.book(buyer, event_id, ["vip-1-2"], key=key)

    assert again.status_code == 201, again.text
    assert again.json()["booking"]["id"] != first.json()["booking"]["id"]
    assert await _count_bookings(stack, event_id) == 2


async def test_empty_or_oversized_idempotency_key_is_400(stack: Stack) -> None:
    event_id = await stack.create_event()

    too_long = await stack.book(stack.actor(), event_id, ["vip-1-1"], key="k" * 256)

    assert too_long.status_code == 400


async def test_retry_after_a_crash_between_hold_and_insert_finds_the_same_hold(
    stack: Stack,
) -> None:
    """The hold token of a keyed request is derived, so the retry re-finds its own hold."""
    event_id = await stack.create_event()
    buyer = stack.actor()
    key = str(uuid.uuid4())
    fingerprint = request_fingerprint(
        BookingCreate.model_validate({"event_id": event_id, "seats": [{"id": "vip-1-1"}]})
    )
    token = hold_token_for(buyer.user_id, KeyUse(key, 0, fingerprint))
    # The crashed attempt took the hold and died before inserting the booking.
    await resources_of(stack.app).events.hold(
        event_id, HoldRequest(token=token, seat_ids=["vip-1-1"], ttl_seconds=HOLD_TTL_SECONDS)
    )

    retry = await stack.book(buyer, event_id, ["vip-1-1"], key=key)

    assert retry.status_code == 201, retry.text
    assert (await stack.booking(retry.json()["booking"]["id"]))["hold_token"] == token


async def test_booking_seat_rows_mirror_the_booking(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1", "vip-1-2"])

    async with stack.app.state.sessionmaker() as session:
        statuses = set(
            await session.scalars(
                select(BookingSeat.status).where(BookingSeat.booking_id == booking["id"])
            )
        )

    assert statuses == {"pending"}


# One hold, everything in it: a booking costs one call to event_service, never a stale price.


class _CountingTransport(httpx.AsyncBaseTransport):
    """Counts the internal calls booking_service makes to event_service."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        return await self.inner.handle_async_request(request)


async def _count_internal_calls(stack: Stack) -> _CountingTransport:
    counting = _CountingTransport(httpx.ASGITransport(app=stack.event_app))
    await route_internal_calls(stack.app, counting)
    return counting


async def _update_event(stack: Stack, organizer: Actor, event_id: int, **fields: Any) -> None:
    response = await stack.events.put(
        f"/api/events/{event_id}", json=fields, headers=organizer.headers
    )
    assert response.status_code == 200, response.text


async def test_a_booking_is_one_call_to_event_service(stack: Stack) -> None:
    event_id = await stack.create_event()
    calls = await _count_internal_calls(stack)
    try:
        for seat in ("vip-1-1", "vip-1-2", "vip-1-3"):
            await stack.booked(stack.actor(), event_id, [seat])
    finally:
        await route_internal_calls(stack.app, httpx.ASGITransport(app=stack.event_app))

    assert calls.calls == [f"POST /internal/events/{event_id}/holds"] * 3


async def test_a_booking_stores_the_event_and_buyer_its_messages_carry(stack: Stack) -> None:
    event_id = await stack.create_event(title="Tizita Night", location="Addis Ababa")
    buyer = stack.actor()

    booking = await stack.booked(buyer, event_id, ["vip-1-1", "normal-1-2"])

    stored = await stack.booking(booking["id"])
    assert (stored["event_title"], stored["venue"]) == ("Tizita Night", "Addis Ababa")
    assert stored["event_starts_at"] is not None
    assert stored["buyer_email"] == f"user-{buyer.user_id}@example.com"
    [created] = await stack.outbox("booking_created", booking_id=booking["id"])
    assert created["user_id"] == buyer.user_id
    assert created["buyer_email"] == f"user-{buyer.user_id}@example.com"
    assert created["total_amount"] == "350.00"  # the message keeps its decimal strings
    assert created["event_title"] == "Tizita Night"
    assert [seat["seat_id"] for seat in created["seats"]] == ["normal-1-2", "vip-1-1"]


async def test_a_price_change_prices_the_very_next_booking(stack: Stack) -> None:
    organizer = stack.actor("organizer")
    event_id = await stack.create_event(organizer)
    first = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    assert first["total_amount"] == 250  # event_service now knows the event parsed

    await _update_event(stack, organizer, event_id, price_vip="300.00")
    second = await stack.booked(stack.actor(), event_id, ["vip-1-2"])

    assert second["total_amount"] == 300
    assert [seat["price"] for seat in second["seat_list"]] == [300]


async def test_a_client_total_at_the_new_price_is_accepted_right_after_the_change(
    stack: Stack,
) -> None:
    organizer = stack.actor("organizer")
    event_id = await stack.create_event(organizer)
    await stack.booked(stack.actor(), event_id, ["vip-1-1"])

    await _update_event(stack, organizer, event_id, price_vip="300.00")
    at_new_price = await stack.book(stack.actor(), event_id, ["vip-1-2"], total_amount="300")
    at_old_price = await stack.book(stack.actor(), event_id, ["vip-1-3"], total_amount="250")

    assert at_new_price.status_code == 201, at_new_price.text
    assert at_old_price.status_code == 409, at_old_price.text
    assert at_old_price.json()["code"] == "amount_mismatch"
    assert (await stack.seat_statuses(event_id))["vip-1-3"] == "available"


async def test_seats_added_to_an_event_can_be_booked_at_once(stack: Stack) -> None:
    organizer = stack.actor("organizer")
    event_id = await stack.create_event(organizer, seats_vip=10)
    await stack.booked(stack.actor(), event_id, ["vip-1-1"])

    await _update_event(stack, organizer, event_id, seats_vip=20)
    response = await stack.book(stack.actor(), event_id, ["vip-2-5"])

    assert response.status_code == 201, response.text


async def test_a_seat_in_the_hundred_thousandth_row_can_be_booked(stack: Stack) -> None:
    """Seat-id rules are one definition (ticketing_common.seats) for both services."""
    event_id = await stack.create_event(
        seats_normal=100_000, seats_vip=0, seats_vvip=0, seats_per_row=1
    )

    response = await stack.book(stack.actor(), event_id, ["normal-100000-1"])

    assert response.status_code == 201, response.text


# A hold whose answer never came blocks no seat for its TTL.


class _LateAnswers(httpx.AsyncBaseTransport):
    """event_service as a caller under overload sees it: each hold is taken (after
    ``delay_before``, as a request that queued) but its answer never arrives; the caller
    times out after ``timeout``. Other calls pass straight through."""

    def __init__(self, stack: Stack, *, timeout: float, delay_before: float = 0) -> None:
        self.inner = httpx.ASGITransport(app=stack.event_app)
        self.timeout = timeout
        self.delay_before = delay_before
        self.late: list[asyncio.Task[httpx.Response]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/holds"):
            return await self.inner.handle_async_request(request)
        await request.aread()

        async def taken_late() -> httpx.Response:
            await asyncio.sleep(self.delay_before)
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response

        self.late.append(asyncio.create_task(taken_late()))
        await asyncio.sleep(self.timeout)
        raise httpx.ReadTimeout("no answer in time", request=request)


async def _with_late_answers(
    stack: Stack, late: _LateAnswers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack.settings, "internal_http_timeout_seconds", late.timeout)
    await route_internal_calls(stack.app, late)


async def _free_seats(stack: Stack, event_id: int, ticket_class: str) -> int:
    response = await stack.events.get(f"/api/events/{event_id}")
    return int(response.json()[f"available_{ticket_class}"])


async def test_a_hold_answered_too_late_is_released_once_the_caller_gives_up(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = await stack.create_event()
    before = await _free_seats(stack, event_id, "vip")
    late = _LateAnswers(stack, timeout=0.4)  # 3 attempts: 1.2 s, deadline 0.2 s in
    await _with_late_answers(stack, late, monkeypatch)
    try:
        response = await stack.book(stack.actor(), event_id, ["vip-1-1", "vip-1-2"])
        answers = await asyncio.gather(*late.late)
    finally:
        await route_internal_calls(stack.app, httpx.ASGITransport(app=stack.event_app))

    assert response.status_code == 503
    assert answers[0].status_code == 201  # the first attempt's hold was taken...
    assert {a.json()["code"] for a in answers[1:]} == {"hold_too_late"}  # ...later ones not
    assert await _free_seats(stack, event_id, "vip") == before  # ...and it went back
    again = await stack.book(stack.actor(), event_id, ["vip-1-1", "vip-1-2"])
    assert again.status_code == 201, again.text


async def test_a_hold_that_reaches_event_service_after_its_deadline_holds_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = await stack.create_event()
    before = await _free_seats(stack, event_id, "vip")
    # every copy queues past the deadline (1.2 s - 1 s), and is only taken once the caller
    # has given up and released the token: a hold then would block its seats for 15 min
    late = _LateAnswers(stack, timeout=0.4, delay_before=1.5)
    await _with_late_answers(stack, late, monkeypatch)
    try:
        response = await stack.book(stack.actor(), event_id, seat_count=2, ticket_class="vip")
        answers = await asyncio.gather(*late.late)
    finally:
        await route_internal_calls(stack.app, httpx.ASGITransport(app=stack.event_app))

    assert response.status_code == 503
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert {a.json()["code"] for a in answers} == {"hold_too_late"}
    assert await _free_seats(stack, event_id, "vip") == before
    again = await stack.book(stack.actor(), event_id, ["vip-1-1", "vip-1-2"])  # the first two
    assert again.status_code == 201, again.text
