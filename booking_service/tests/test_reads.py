"""The reads of /api/bookings and /internal/bookings, with their access rules."""

from __future__ import annotations

from booking_service.tests.conftest import Stack
from ticketing_common.security import SERVICE_TOKEN_HEADER


async def test_owner_organizer_of_the_event_and_admin_read_a_booking(stack: Stack) -> None:
    organizer = stack.actor("organizer")
    event_id = await stack.create_event(organizer)
    buyer = stack.actor()
    booking = await stack.booked(buyer, event_id, ["vip-1-1"])
    url = f"/api/bookings/{booking['id']}"

    for reader in (buyer, organizer, stack.admin):
        response = await stack.client.get(url, headers=reader.headers)
        assert response.status_code == 200, (reader.role, response.text)
        assert response.json()["booking"]["id"] == booking["id"]
        assert "hold_token" not in response.json()["booking"]


async def test_other_users_and_other_organizers_cannot_read_a_booking(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    url = f"/api/bookings/{booking['id']}"

    for stranger in (stack.actor(), stack.actor("organizer")):
        response = await stack.client.get(url, headers=stranger.headers)
        assert response.status_code == 403, response.text


async def test_unknown_booking_is_404_and_a_malformed_id_is_400(stack: Stack) -> None:
    reader = stack.actor()

    assert (
        await stack.client.get("/api/bookings/987654321", headers=reader.headers)
    ).status_code == 404
    assert (await stack.client.get("/api/bookings/abc", headers=reader.headers)).status_code == 400
    assert (await stack.client.get("/api/bookings/0", headers=reader.headers)).status_code == 400


async def test_my_bookings_lists_only_mine_newest_first_with_a_total(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    first = await stack.booked(buyer, event_id, ["vip-1-1"])
    second = await stack.booked(buyer, event_id, ["vip-1-2"])
    third = await stack.booked(buyer, event_id, ["vip-1-3"])
    await stack.booked(stack.actor(), event_id, ["vip-1-4"])

    response = await stack.client.get(
        "/api/bookings/user", params={"status": "all", "limit": 2}, headers=buyer.headers
    )

    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "3"
    assert [b["id"] for b in response.json()["bookings"]] == [third["id"], second["id"]]
    rest = await stack.client.get(
        "/api/bookings/user",
        params={"status": "all", "limit": 2, "offset": 2},
        headers=buyer.headers,
    )
    assert [b["id"] for b in rest.json()["bookings"]] == [first["id"]]


async def test_my_bookings_are_the_paid_ones_unless_a_status_says_otherwise(
    stack: Stack,
) -> None:
    """As the original: a buyer's list is their confirmed bookings."""
    event_id = await stack.create_event()
    buyer = stack.actor()
    paid = await stack.booked(buyer, event_id, ["vip-1-1"])
    unpaid = await stack.booked(buyer, event_id, ["vip-1-2"])
    await stack.settle(paid)

    default = await stack.client.get("/api/bookings/user", headers=buyer.headers)
    pending = await stack.client.get(
        "/api/bookings/user", params={"status": "pending"}, headers=buyer.headers
    )
    every = await stack.client.get(
        "/api/bookings/user", params={"status": "all"}, headers=buyer.headers
    )

    assert [b["id"] for b in default.json()["bookings"]] == [paid["id"]]
    assert default.headers["X-Total-Count"] == "1"
    assert [b["id"] for b in pending.json()["bookings"]] == [unpaid["id"]]
    assert [b["id"] for b in every.json()["bookings"]] == [unpaid["id"], paid["id"]]


async def test_a_list_without_limit_is_whole_up_to_its_cap(stack: Stack) -> None:
    """The original's clients page nothing: no ``limit`` means everything, up to 1,000."""
    event_id = await stack.create_event(seats_normal=20, seats_per_row=20)
    # 18 bookings; one buyer may have 3 unpaid bookings of an event, so six buyers.
    for n in range(6):
        buyer = stack.actor()
        for k in range(1, 4):
            await stack.booked(buyer, event_id, [f"normal-1-{n * 3 + k}"])
    params = {"event_id": event_id}

    whole = await stack.client.get("/api/bookings/all", params=params, headers=stack.admin.headers)
    capped = await stack.client.get(
        "/api/bookings/all", params={**params, "limit": 1000}, headers=stack.admin.headers
    )
    beyond = await stack.client.get(
        "/api/bookings/all", params={**params, "limit": 1001}, headers=stack.admin.headers
    )

    assert len(whole.json()["bookings"]) == 18
    assert whole.headers["X-Total-Count"] == "18"
    assert len(capped.json()["bookings"]) == 18
    assert beyond.status_code == 400


async def test_my_bookings_filter_by_status(stack: Stack) -> None:
    event_id = await stack.create_event()
    buyer = stack.actor()
    paid = await stack.booked(buyer, event_id, ["vip-1-1"])
    await stack.booked(buyer, event_id, ["vip-1-2"])
    await stack.settle(paid)

    response = await stack.client.get(
        "/api/bookings/user", params={"status": "confirmed"}, headers=buyer.headers
    )

    assert [b["id"] for b in response.json()["bookings"]] == [paid["id"]]
    assert response.headers["X-Total-Count"] == "1"


async def test_bad_list_parameters_are_400(stack: Stack) -> None:
    buyer = stack.actor()
    for params in ({"status": "lost"}, {"limit": 0}, {"limit": 1001}, {"offset": -1}):
        response = await stack.client.get(
            "/api/bookings/user", params=params, headers=buyer.headers
        )
        assert response.status_code == 400, params


async def test_all_bookings_is_for_admins_only(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])

    denied = await stack.client.get("/api/bookings/all", headers=stack.actor().headers)
    allowed = await stack.client.get(
        "/api/bookings/all", params={"event_id": event_id}, headers=stack.admin.headers
    )

    assert denied.status_code == 403
    assert allowed.status_code == 200
    assert [b["id"] for b in allowed.json()["bookings"]] == [booking["id"]]
    assert allowed.headers["X-Total-Count"] == "1"


async def test_organizer_sales_cover_only_their_own_events(stack: Stack) -> None:
    organizer, rival = stack.actor("organizer"), stack.actor("organizer")
    mine = await stack.create_event(organizer)
    theirs = await stack.create_event(rival)
    sold = await stack.booked(stack.actor(), mine, ["vip-1-1"])
    unpaid = await stack.booked(stack.actor(), mine, ["vip-1-2"])
    rival_sale = await stack.booked(stack.actor(), theirs, ["vip-1-1"])
    await stack.settle(sold)
    await stack.settle(rival_sale)

    response = await stack.client.get("/api/bookings/organizer/sales", headers=organizer.headers)

    assert response.status_code == 200
    assert [s["id"] for s in response.json()["sales"]] == [sold["id"]]
    pending = await stack.client.get(
        "/api/bookings/organizer/sales", params={"status": "pending"}, headers=organizer.headers
    )
    assert [s["id"] for s in pending.json()["sales"]] == [unpaid["id"]]


async def test_organizer_cannot_read_another_organizers_event_sales(stack: Stack) -> None:
    organizer, rival = stack.actor("organizer"), stack.actor("organizer")
    event_id = await stack.create_event(organizer)
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await stack.settle(booking)
    url = f"/api/bookings/organizer/sales/{event_id}"

    own = await stack.client.get(url, headers=organizer.headers)
    other = await stack.client.get(url, headers=rival.headers)
    admin = await stack.client.get(url, headers=stack.admin.headers)
    buyer = await stack.client.get(url, headers=stack.actor().headers)

    assert own.status_code == 200
    assert [s["id"] for s in own.json()["sales"]] == [booking["id"]]
    assert other.status_code == 403
    assert admin.status_code == 200
    assert buyer.status_code == 403


async def test_sales_of_an_unknown_event_are_404(stack: Stack) -> None:
    response = await stack.client.get(
        "/api/bookings/organizer/sales/987654321", headers=stack.actor("organizer").headers
    )

    assert response.status_code == 404


async def test_plain_users_have_no_sales(stack: Stack) -> None:
    response = await stack.client.get(
        "/api/bookings/organizer/sales", headers=stack.actor().headers
    )

    assert response.status_code == 403


async def test_event_seats_show_locked_while_pending_and_sold_once_paid(stack: Stack) -> None:
    event_id = await stack.create_event()
    paid = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await stack.booked(stack.actor(), event_id, ["vip-1-2", "normal-1-5"])
    cancelled_by = stack.actor()
    cancelled = await stack.booked(cancelled_by, event_id, ["vip-1-3"])
    await stack.settle(paid)
    await stack.client.post(f"/api/bookings/{cancelled['id']}/cancel", headers=cancelled_by.headers)

    response = await stack.client.get(
        f"/api/bookings/event/{event_id}/seats", headers=stack.actor().headers
    )

    assert response.status_code == 200
    seats = {s["seat_id"]: s for s in response.json()["seats"]}
    assert {k: v["status"] for k, v in seats.items()} == {
        "vip-1-1": "sold",
        "vip-1-2": "locked",
        "normal-1-5": "locked",
    }
    assert seats["normal-1-5"] == {
        "id": "normal-1-5",
        "row": 1,
        "number": 5,
        "price": 100,
        "status": "locked",
        "seat_id": "normal-1-5",
        "ticket_class": "normal",
    }


async def test_event_seats_need_a_token(stack: Stack) -> None:
    response = await stack.client.get("/api/bookings/event/1/seats")

    assert response.status_code == 401


async def test_internal_lookup_needs_the_service_token(stack: Stack) -> None:
    event_id = await stack.create_event()
    booking = await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    url = f"/internal/bookings/{booking['id']}"

    anonymous = await stack.client.get(url)
    user = await stack.client.get(url, headers=stack.actor().headers)
    service = await stack.client.get(
        url, headers={SERVICE_TOKEN_HEADER: stack.settings.service_token}
    )

    assert anonymous.status_code == 401
    assert user.status_code == 401
    assert service.status_code == 200
    body = service.json()
    for key in (
        "id",
        "user_id",
        "event_id",
        "status",
        "total_amount",
        "currency",
        "expires_at",
        "created_at",
        "hold_token",
        "seats",
    ):
        assert key in body
    assert body["seats"][0] == {
        "seat_id": "vip-1-1",
        "ticket_class": "vip",
        "row": 1,
        "number": 1,
        "price": "250.00",
    }


async def test_internal_lookup_of_unknown_booking_is_404(stack: Stack) -> None:
    response = await stack.client.get(
        "/internal/bookings/987654321",
        headers={SERVICE_TOKEN_HEADER: stack.settings.service_token},
    )

    assert response.status_code == 404


def _bookings_counted(metrics_text: str, outcome: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(f'bookings_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    raise AssertionError(f"no bookings_total sample for {outcome}")


async def test_booking_outcomes_are_counted_in_metrics(stack: Stack) -> None:
    event_id = await stack.create_event()
    before = (await stack.client.get("/metrics")).text

    await stack.booked(stack.actor(), event_id, ["vip-1-1"])
    await stack.book(stack.actor(), event_id, ["vip-1-1"])

    after = (await stack.client.get("/metrics")).text
    for outcome in ("created", "conflict"):
        assert _bookings_counted(after, outcome) == _bookings_counted(before, outcome) + 1
