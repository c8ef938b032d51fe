"""Tickets checked in at the door: once per seat, by the event's organizer or an admin,
online and from offline doors (issue 19)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from booking_service.models import CheckinScan, TicketCheckin
from booking_service.schemas import MAX_SCANS_PER_BATCH
from booking_service.tests.conftest import Actor, Stack
from ticketing_common.db import utcnow
from ticketing_common.tickets import sign_booking_code, sign_ticket_code

CHECKIN = "/api/bookings/checkin"
BATCH = "/api/bookings/checkin/batch"
UNKNOWN_BOOKING = 987_654_321_000


@dataclass(frozen=True)
class Sale:
    """A paid booking of an event, and who is who."""

    event_id: int
    organizer: Actor
    buyer: Actor
    booking: dict[str, Any]

    @property
    def booking_id(self) -> int:
        return int(self.booking["id"])


async def sell(stack: Stack, seats: list[str], organizer: Actor | None = None) -> Sale:
    organizer = organizer or stack.actor("organizer")
    event_id = await stack.create_event(organizer)
    buyer = stack.actor()
    booking = await stack.booked(buyer, event_id, seats)
    assert await stack.settle(booking) == "confirmed"
    return Sale(event_id, organizer, buyer, booking)


def code(stack: Stack, sale: Sale, seat_id: str) -> str:
    secret = stack.settings.ticket_signing_secret
    return sign_ticket_code(sale.booking_id, sale.event_id, seat_id, secret)


async def scan(stack: Stack, scanner: Actor, ticket_code: str, **body: Any) -> httpx.Response:
    return await stack.client.post(
        CHECKIN, json={"code": ticket_code, **body}, headers=scanner.headers
    )


async def scanned(stack: Stack, scanner: Actor, ticket_code: str, **body: Any) -> dict[str, Any]:
    response = await scan(stack, scanner, ticket_code, **body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def upload(
    stack: Stack, scanner: Actor, event_id: int, scans: list[dict[str, Any]]
) -> httpx.Response:
    return await stack.client.post(
        BATCH, json={"event_id": event_id, "scans": scans}, headers=scanner.headers
    )


def at(moment: datetime) -> str:
    return moment.isoformat()


async def checkins_of(stack: Stack, booking_id: int) -> dict[str, TicketCheckin]:
    async with stack.app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(TicketCheckin).where(TicketCheckin.booking_id == booking_id)
        )
        return {row.seat_id: row for row in rows}


# --- the codes a confirmed booking shows ----------------------------------------------


async def test_a_confirmed_booking_lists_each_seats_code_and_other_statuses_none(
    stack: Stack,
) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    booking = await stack.booked(buyer, event_id, ["vip-1-1", "normal-1-2"])
    url = f"/api/bookings/{booking['id']}"

    pending = (await stack.client.get(url, headers=buyer.headers)).json()["booking"]
    await stack.settle(booking)
    confirmed = (await stack.client.get(url, headers=buyer.headers)).json()["booking"]
    await stack.client.post(f"{url}/cancel", headers=buyer.headers)
    cancelled = (await stack.client.get(url, headers=buyer.headers)).json()["booking"]

    assert pending["tickets"] == []
    secret = stack.settings.ticket_signing_secret
    assert confirmed["tickets"] == [
        {"seat_id": seat, "code": sign_ticket_code(booking["id"], event_id, seat, secret)}
        for seat in ("normal-1-2", "vip-1-1")
    ]
    assert cancelled["tickets"] == []


# --- online: one scan --------------------------------------------------------------------


async def test_a_seat_is_let_in_once_then_answers_already_checked_in_with_the_first_time(
    stack: Stack,
) -> None:
    sale = await sell(stack, ["vip-1-1"])
    ticket = code(stack, sale, "vip-1-1")

    first = await scanned(stack, sale.organizer, ticket, event_id=sale.event_id, device="door-1")
    again = await scanned(stack, sale.organizer, ticket, event_id=sale.event_id, device="door-2")

    assert first["result"] == "ok"
    assert (first["booking_id"], first["seat_id"]) == (sale.booking_id, "vip-1-1")
    assert again["result"] == "already_checked_in"
    assert again["checked_in_at"] == first["checked_in_at"]
    [row] = (await checkins_of(stack, sale.booking_id)).values()
    assert (row.device, row.offline, row.checked_in_by) == ("door-1", False, sale.organizer.user_id)


async def test_each_seat_of_a_booking_goes_in_on_its_own_code(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1", "vip-1-2"])

    first = await scanned(stack, sale.organizer, code(stack, sale, "vip-1-1"))
    second = await scanned(stack, sale.organizer, code(stack, sale, "vip-1-2"))

    assert (first["result"], second["result"]) == ("ok", "ok")
    assert set(await checkins_of(stack, sale.booking_id)) == {"vip-1-1", "vip-1-2"}


async def test_ten_doors_scanning_one_code_at_once_let_it_in_exactly_once(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1"])
    ticket = code(stack, sale, "vip-1-1")

    answers = await asyncio.gather(
        *(scanned(stack, sale.organizer, ticket, device=f"door-{n}") for n in range(10))
    )

    results = sorted(answer["result"] for answer in answers)
    assert results == ["already_checked_in"] * 9 + ["ok"]
    assert len({answer["checked_in_at"] for answer in answers}) == 1
    assert len(await checkins_of(stack, sale.booking_id)) == 1


async def test_an_admin_checks_any_ticket_in(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1"])

    answer = await scanned(stack, stack.admin, code(stack, sale, "vip-1-1"))

    assert answer["result"] == "ok"


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(
            lambda s, sale: sign_ticket_code(sale.booking_id, sale.event_id, "vip-1-1", "nope"),
            id="another-secret",
        ),
        pytest.param(
            lambda s, sale: code(s, sale, "vip-1-1").replace("vip-1-1", "vvip-1-1"),
            id="seat-edited",
        ),
        pytest.param(lambda s, sale: code(s, sale, "vip-1-1")[:-2] + "AA", id="signature-edited"),
        pytest.param(
            lambda s, sale: code(s, sale, "vip-1-1").replace(
                f".{sale.booking_id}.", f".{sale.booking_id + 1}."
            ),
            id="booking-edited",
        ),
        pytest.param(lambda s, sale: "hello, door", id="not-a-code"),
        pytest.param(lambda s, sale: "TKT2.1.1.vip-1-1.", id="no-signature"),
    ],
)
async def test_a_forged_or_altered_code_is_invalid_and_lets_nobody_in(
    stack: Stack, forge: Any
) -> None:
    sale = await sell(stack, ["vip-1-1"])

    answer = await scanned(stack, sale.organizer, forge(stack, sale), event_id=sale.event_id)

    assert answer["result"] == "invalid"
    assert answer["checked_in_at"] is None
    assert await checkins_of(stack, sale.booking_id) == {}


async def test_a_genuine_code_of_an_unknown_booking_or_seat_is_invalid(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1"])
    secret = stack.settings.ticket_signing_secret
    unknown_booking = sign_ticket_code(UNKNOWN_BOOKING, sale.event_id, "vip-1-1", secret)
    unknown_seat = code(stack, sale, "vip-1-2")
    other_event = sign_ticket_code(sale.booking_id, sale.event_id + 1, "vip-1-1", secret)

    answers = [
        await scanned(stack, sale.organizer, ticket, event_id=sale.event_id)
        for ticket in (unknown_booking, unknown_seat, other_event)
    ]

    assert [answer["result"] for answer in answers] == ["invalid"] * 3
    assert answers[0]["booking_id"] == UNKNOWN_BOOKING
    assert await checkins_of(stack, sale.booking_id) == {}


async def test_a_booking_never_paid_is_invalid(stack: Stack) -> None:
    organizer = stack.actor("organizer")
    event_id = await stack.create_event(organizer)
    pending = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    failed = await stack.booked(stack.actor(), event_id, ["vip-1-2"])
    await stack.fail(failed)
    secret = stack.settings.ticket_signing_secret

    answers = [
        await scanned(stack, organizer, sign_ticket_code(b["id"], event_id, seat, secret))
        for b, seat in ((pending, "vip-1-1"), (failed, "vip-1-2"))
    ]

    assert [answer["result"] for answer in answers] == ["invalid", "invalid"]


async def test_a_paid_booking_cancelled_since_answers_cancelled(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1", "vip-1-2"])
    await scanned(stack, sale.organizer, code(stack, sale, "vip-1-1"))
    cancel = await stack.client.post(
        f"/api/bookings/{sale.booking_id}/cancel", headers=sale.buyer.headers
    )
    assert cancel.status_code == 200, cancel.text

    answers = [
        await scanned(stack, sale.organizer, code(stack, sale, seat))
        for seat in ("vip-1-1", "vip-1-2")
    ]

    assert [answer["result"] for answer in answers] == ["cancelled", "cancelled"]
    assert set(await checkins_of(stack, sale.booking_id)) == {"vip-1-1"}


async def test_a_ticket_of_another_event_is_wrong_event_at_the_door(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1"])
    own_other_event = await stack.create_event(sale.organizer)
    other_organizer = stack.actor("organizer")
    their_event = await stack.create_event(other_organizer)
    ticket = code(stack, sale, "vip-1-1")

    at_own_other_door = await scanned(stack, sale.organizer, ticket, event_id=own_other_event)
    at_their_door = await scanned(stack, other_organizer, ticket, event_id=their_event)
    without_a_door = await scan(stack, other_organizer, ticket)

    assert at_own_other_door["result"] == "wrong_event"
    assert at_their_door["result"] == "wrong_event"
    assert at_their_door["checked_in_at"] is None
    assert without_a_door.status_code == 403
    assert await checkins_of(stack, sale.booking_id) == {}


async def test_a_first_ticket_code_checks_in_every_seat_of_its_booking_not_yet_in(
    stack: Stack,
) -> None:
    sale = await sell(stack, ["vip-1-1", "vip-1-2", "vip-1-3"])
    first_ticket = sign_booking_code(
        sale.booking_id, sale.event_id, stack.settings.ticket_signing_secret
    )
    one_seat = await scanned(stack, sale.organizer, code(stack, sale, "vip-1-2"))

    whole = await scanned(stack, sale.organizer, first_ticket, event_id=sale.event_id)
    again = await scanned(stack, sale.organizer, first_ticket)

    assert whole["result"] == "ok"
    assert (whole["booking_id"], whole["seat_id"]) == (sale.booking_id, None)
    assert set(await checkins_of(stack, sale.booking_id)) == {"vip-1-1", "vip-1-2", "vip-1-3"}
    assert again["result"] == "already_checked_in"
    assert again["checked_in_at"] == one_seat["checked_in_at"], "the first check-in's time"


async def test_only_the_events_organizer_or_an_admin_may_scan_its_tickets(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1"])
    ticket = code(stack, sale, "vip-1-1")

    for stranger in (sale.buyer, stack.actor(), stack.actor("organizer")):
        refused = await scan(stack, stranger, ticket, event_id=sale.event_id)
        assert refused.status_code == 403, (stranger.role, refused.text)
        assert refused.json()["code"] == "forbidden"
    assert await checkins_of(stack, sale.booking_id) == {}
    unauthenticated = await stack.client.post(CHECKIN, json={"code": ticket})
    assert unauthenticated.status_code == 401


async def test_an_unknown_code_is_invalid_only_to_organizers_and_admins(stack: Stack) -> None:
    organizer = stack.actor("organizer")
    event_id = await stack.create_event(organizer)
    other_event = await stack.create_event()
    junk = "TKT2.1.1.vip-1-1." + "A" * 43

    as_organizer = await scan(stack, organizer, junk)
    at_own_door = await scan(stack, organizer, junk, event_id=event_id)
    at_someone_elses_door = await scan(stack, organizer, junk, event_id=other_event)
    as_admin = await scan(stack, stack.admin, junk, event_id=other_event)
    as_buyer = await scan(stack, stack.actor(), junk)

    assert as_organizer.json()["result"] == "invalid"
    assert at_own_door.json()["result"] == "invalid"
    assert at_someone_elses_door.status_code == 403
    assert as_admin.json()["result"] == "invalid"
    assert as_buyer.status_code == 403


async def test_a_door_naming_an_unknown_event_is_404(stack: Stack) -> None:
    response = await scan(stack, stack.actor("organizer"), "junk", event_id=UNKNOWN_BOOKING)

    assert response.status_code == 404, response.text
    assert response.json()["code"] == "event_not_found"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-code"),
        pytest.param({"code": ""}, id="empty-code"),
        pytest.param({"code": "x" * 257}, id="long-code"),
        pytest.param({"code": 42}, id="code-not-text"),
        pytest.param({"code": "x", "event_id": 0}, id="event-zero"),
        pytest.param({"code": "x", "event_id": 2**63}, id="event-too-large"),
        pytest.param({"code": "x", "device": "d" * 65}, id="long-device"),
    ],
)
async def test_a_malformed_scan_is_400(stack: Stack, body: dict[str, Any]) -> None:
    response = await stack.client.post(CHECKIN, json=body, headers=stack.admin.headers)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error"


async def test_every_scan_is_logged_and_counted(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1"])
    ticket = code(stack, sale, "vip-1-1")

    def counted(result: str) -> float:
        return REGISTRY.get_sample_value("checkins_total", {"result": result}) or 0.0

    before = {result: counted(result) for result in ("ok", "already_checked_in", "invalid")}
    await scanned(stack, sale.organizer, ticket, device="door-1")
    await scanned(stack, sale.organizer, ticket, device="door-2")
    await scanned(stack, sale.organizer, "junk", event_id=sale.event_id)

    async with stack.app.state.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(CheckinScan)
                .where(CheckinScan.event_id == sale.event_id)
                .order_by(CheckinScan.id)
            )
        ).all()
    assert [(r.result, r.booking_id, r.seat_id, r.device) for r in rows] == [
        ("ok", sale.booking_id, "vip-1-1", "door-1"),
        ("already_checked_in", sale.booking_id, "vip-1-1", "door-2"),
        ("invalid", None, None, None),
    ]
    assert {r.scanned_by for r in rows} == {sale.organizer.user_id}
    assert not any(r.offline for r in rows)
    assert {result: counted(result) - before[result] for result in before} == {
        "ok": 1.0,
        "already_checked_in": 1.0,
        "invalid": 1.0,
    }


# --- what the organizer sees -------------------------------------------------------------


async def test_stats_count_seats_checked_in_of_seats_sold(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1", "vip-1-2"])
    other = await stack.booked(stack.actor(), sale.event_id, ["normal-1-1"])
    await stack.settle(other)
    await stack.booked(stack.actor(), sale.event_id, ["normal-1-2"])  # not paid: not sold
    await scanned(stack, sale.organizer, code(stack, sale, "vip-1-1"))
    url = f"{CHECKIN}/{sale.event_id}/stats"

    stats = await stack.client.get(url, headers=sale.organizer.headers)
    by_admin = await stack.client.get(url, headers=stack.admin.headers)
    by_stranger = await stack.client.get(url, headers=stack.actor("organizer").headers)
    by_buyer = await stack.client.get(url, headers=sale.buyer.headers)

    assert stats.status_code == 200, stats.text
    assert stats.json() == {"event_id": sale.event_id, "checked_in": 1, "sold": 3}
    assert by_admin.json() == stats.json()
    assert (by_stranger.status_code, by_buyer.status_code) == (403, 403)


async def test_the_door_list_has_every_valid_code_and_marks_cancelled_ones(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1", "vip-1-2"])
    refunded = await stack.booked(stack.actor(), sale.event_id, ["normal-1-1"])
    await stack.settle(refunded)
    await stack.client.post(f"/api/bookings/{refunded['id']}/cancel", headers=stack.admin.headers)
    await stack.booked(stack.actor(), sale.event_id, ["normal-1-2"])  # not paid: no ticket
    checked = await scanned(stack, sale.organizer, code(stack, sale, "vip-1-1"))
    secret = stack.settings.ticket_signing_secret
    url = f"{CHECKIN}/{sale.event_id}/list"

    response = await stack.client.get(url, headers=sale.organizer.headers)
    by_stranger = await stack.client.get(url, headers=stack.actor("organizer").headers)

    assert response.status_code == 200, response.text
    door = response.json()
    assert door["event_id"] == sale.event_id
    assert datetime.fromisoformat(door["generated_at"]) <= utcnow()
    assert sorted(door["tickets"], key=lambda t: t["code"]) == sorted(
        [
            {
                "code": code(stack, sale, "vip-1-1"),
                "booking_id": sale.booking_id,
                "seat_id": "vip-1-1",
                "status": "valid",
                "checked_in_at": checked["checked_in_at"],
            },
            {
                "code": code(stack, sale, "vip-1-2"),
                "booking_id": sale.booking_id,
                "seat_id": "vip-1-2",
                "status": "valid",
                "checked_in_at": None,
            },
            {
                "code": sign_ticket_code(refunded["id"], sale.event_id, "normal-1-1", secret),
                "booking_id": refunded["id"],
                "seat_id": "normal-1-1",
                "status": "cancelled",
                "checked_in_at": None,
            },
        ],
        key=lambda t: t["code"],
    )
    assert {(b["booking_id"], b["code"], b["status"]) for b in door["booking_codes"]} == {
        (sale.booking_id, sign_booking_code(sale.booking_id, sale.event_id, secret), "valid"),
        (refunded["id"], sign_booking_code(refunded["id"], sale.event_id, secret), "cancelled"),
    }
    assert by_stranger.status_code == 403


# --- offline doors: uploads where the earliest scan wins ---------------------------------


async def test_an_offline_scan_earlier_than_the_recorded_check_in_replaces_it(
    stack: Stack,
) -> None:
    sale = await sell(stack, ["vip-1-1"])
    ticket = code(stack, sale, "vip-1-1")
    online = await scanned(stack, sale.organizer, ticket, device="door-1")
    earlier = datetime.fromisoformat(online["checked_in_at"]) - timedelta(minutes=10)

    response = await upload(
        stack,
        stack.admin,
        sale.event_id,
        [{"code": ticket, "scanned_at": at(earlier), "device": "door-9"}],
    )

    assert response.status_code == 200, response.text
    [answer] = response.json()["scans"]
    assert answer["result"] == "ok"
    assert (answer["conflict"], answer["winner"]) == (True, "this_scan")
    assert datetime.fromisoformat(answer["checked_in_at"]) == earlier
    [row] = (await checkins_of(stack, sale.booking_id)).values()
    assert (row.checked_in_at, row.device, row.offline) == (earlier, "door-9", True)
    assert row.checked_in_by == stack.admin.user_id
    again = await scanned(stack, sale.organizer, ticket)
    assert datetime.fromisoformat(again["checked_in_at"]) == earlier


async def test_an_upload_keeps_each_seats_earliest_scan_and_reports_every_conflict(
    stack: Stack,
) -> None:
    sale = await sell(stack, ["vip-1-1", "vip-1-2", "vip-1-3"])
    recorded = await scanned(stack, sale.organizer, code(stack, sale, "vip-1-3"))
    now = utcnow()
    early, late = now - timedelta(minutes=30), now - timedelta(minutes=20)
    after_recorded = datetime.fromisoformat(recorded["checked_in_at"]) + timedelta(seconds=1)
    refunded = await stack.booked(stack.actor(), sale.event_id, ["vvip-1-1"])
    await stack.settle(refunded)
    await stack.client.post(f"/api/bookings/{refunded['id']}/cancel", headers=stack.admin.headers)
    secret = stack.settings.ticket_signing_secret
    elsewhere = await sell(stack, ["vip-1-1"], organizer=sale.organizer)
    scans = [
        {"code": code(stack, sale, "vip-1-1"), "scanned_at": at(late), "device": "door-a"},
        {"code": code(stack, sale, "vip-1-1"), "scanned_at": at(early), "device": "door-b"},
        {"code": code(stack, sale, "vip-1-2"), "scanned_at": at(late)},
        {"code": code(stack, sale, "vip-1-3"), "scanned_at": at(after_recorded)},
        {"code": "forged", "scanned_at": at(late)},
        {
            "code": sign_ticket_code(refunded["id"], sale.event_id, "vvip-1-1", secret),
            "scanned_at": at(late),
        },
        {"code": code(stack, elsewhere, "vip-1-1"), "scanned_at": at(late)},
    ]

    response = await upload(stack, sale.organizer, sale.event_id, scans)

    assert response.status_code == 200, response.text
    answers = response.json()["scans"]
    assert [a["code"] for a in answers] == [s["code"] for s in scans]
    summary = [(a["result"], a["conflict"], a["winner"]) for a in answers]
    assert summary == [
        ("already_checked_in", True, "other_scan"),
        ("ok", True, "this_scan"),
        ("ok", False, "this_scan"),
        ("already_checked_in", True, "recorded"),
        ("invalid", False, None),
        ("cancelled", False, None),
        ("wrong_event", False, None),
    ]
    times = [a["checked_in_at"] and datetime.fromisoformat(a["checked_in_at"]) for a in answers]
    assert times[:4] == [
        early,
        early,
        late,
        datetime.fromisoformat(recorded["checked_in_at"]),
    ]
    assert times[4:] == [None, None, None]
    rows = await checkins_of(stack, sale.booking_id)
    assert {seat: row.checked_in_at for seat, row in rows.items()} == {
        "vip-1-1": early,
        "vip-1-2": late,
        "vip-1-3": datetime.fromisoformat(recorded["checked_in_at"]),
    }
    assert rows["vip-1-1"].device == "door-b"
    assert await checkins_of(stack, elsewhere.booking_id) == {}
    async with stack.app.state.sessionmaker() as session:
        logged = await session.scalar(
            select(func.count())
            .select_from(CheckinScan)
            .where(CheckinScan.event_id == sale.event_id, CheckinScan.offline)
        )
    assert logged == len(scans)


async def test_an_upload_of_a_first_ticket_code_checks_in_its_seats(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1", "vip-1-2"])
    first_ticket = sign_booking_code(
        sale.booking_id, sale.event_id, stack.settings.ticket_signing_secret
    )
    scanned_at = utcnow() - timedelta(minutes=1)

    response = await upload(
        stack, sale.organizer, sale.event_id, [{"code": first_ticket, "scanned_at": at(scanned_at)}]
    )

    [answer] = response.json()["scans"]
    assert (answer["result"], answer["seat_id"], answer["winner"]) == ("ok", None, "this_scan")
    assert set(await checkins_of(stack, sale.booking_id)) == {"vip-1-1", "vip-1-2"}


async def test_two_doors_uploading_the_same_seat_at_once_agree_on_the_earliest(
    stack: Stack,
) -> None:
    sale = await sell(stack, ["vip-1-1"])
    ticket = code(stack, sale, "vip-1-1")
    times = [utcnow() - timedelta(minutes=m) for m in (3, 7, 5, 1)]

    responses = await asyncio.gather(
        *(
            upload(stack, sale.organizer, sale.event_id, [{"code": ticket, "scanned_at": at(t)}])
            for t in times
        )
    )

    answers = [response.json()["scans"][0] for response in responses]
    [row] = (await checkins_of(stack, sale.booking_id)).values()
    assert row.checked_in_at == min(times)
    assert [a["result"] for a in answers].count("ok") >= 1
    assert answers[1]["result"] == "ok", "the earliest scan always wins"


async def test_an_upload_by_anyone_but_the_organizer_or_an_admin_is_403(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1"])
    scans = [{"code": code(stack, sale, "vip-1-1"), "scanned_at": at(utcnow())}]

    for stranger in (sale.buyer, stack.actor("organizer")):
        response = await upload(stack, stranger, sale.event_id, scans)
        assert response.status_code == 403, response.text
    assert await checkins_of(stack, sale.booking_id) == {}


async def test_an_upload_for_an_unknown_event_is_404_to_an_organizer(stack: Stack) -> None:
    scans = [{"code": "x", "scanned_at": at(utcnow())}]

    response = await upload(stack, stack.actor("organizer"), UNKNOWN_BOOKING, scans)

    assert response.status_code == 404, response.text


async def test_an_upload_beyond_the_bound_or_from_the_future_is_422(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1"])
    ticket = code(stack, sale, "vip-1-1")
    now = utcnow()
    too_many = [{"code": ticket, "scanned_at": at(now)}] * (MAX_SCANS_PER_BATCH + 1)
    future = [
        {"code": ticket, "scanned_at": at(now)},
        {"code": ticket, "scanned_at": at(now + timedelta(hours=1))},
    ]
    within_skew = [{"code": ticket, "scanned_at": at(now + timedelta(seconds=30))}]

    beyond = await upload(stack, sale.organizer, sale.event_id, too_many)
    ahead = await upload(stack, sale.organizer, sale.event_id, future)
    skewed = await upload(stack, sale.organizer, sale.event_id, within_skew)

    assert beyond.status_code == 422, beyond.text
    assert beyond.json()["code"] == "too_many_scans"
    assert ahead.status_code == 422, ahead.text
    assert ahead.json()["code"] == "scan_in_the_future"
    assert ahead.json()["details"] == {"scans": [1]}
    assert skewed.status_code == 200, skewed.text
    assert skewed.json()["scans"][0]["result"] == "ok"


async def test_a_full_upload_of_a_thousand_scans_is_taken(stack: Stack) -> None:
    sale = await sell(stack, ["vip-1-1"])
    ticket = code(stack, sale, "vip-1-1")
    start = utcnow() - timedelta(hours=1)
    scans = [
        {"code": ticket, "scanned_at": at(start + timedelta(seconds=n)), "device": f"d{n}"}
        for n in range(MAX_SCANS_PER_BATCH)
    ]

    response = await upload(stack, sale.organizer, sale.event_id, scans)

    assert response.status_code == 200, response.text
    answers = response.json()["scans"]
    assert [a["result"] for a in answers].count("ok") == 1
    assert answers[0]["result"] == "ok"
    assert {a["checked_in_at"] for a in answers} == {answers[0]["checked_in_at"]}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"scans": [{"code": "x", "scanned_at": "2026-01-01T00:00:00Z"}]}, id="no-event"
        ),
        pytest.param({"event_id": 1, "scans": []}, id="no-scans"),
        pytest.param({"event_id": 1, "scans": [{"code": "x"}]}, id="no-time"),
        pytest.param(
            {"event_id": 1, "scans": [{"code": "x", "scanned_at": "2026-01-01T00:00:00"}]},
            id="time-without-zone",
        ),
        pytest.param(
            {"event_id": 1, "scans": [{"code": "x", "scanned_at": "0001-01-01T00:00:00+05:00"}]},
            id="time-before-year-one-in-utc",
        ),
        pytest.param(
            {"event_id": 1, "scans": [{"code": "x", "scanned_at": "yesterday"}]}, id="not-a-time"
        ),
        pytest.param({"event_id": 1, "scans": "x"}, id="scans-not-a-list"),
    ],
)
async def test_a_malformed_upload_is_400(stack: Stack, body: dict[str, Any]) -> None:
    response = await stack.client.post(BATCH, json=body, headers=stack.admin.headers)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error"
