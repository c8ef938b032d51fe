"""ORIGINAL_API.md, payments (``/api/payments``): the original's requests, replayed
through the gateway of the test stack, answered with its fields and JSON types.

A buyer books seats as the original's front end does, then pays them the way it does:
``POST /initialize`` with ``{booking_id, user_id, amount, email, first_name, last_name}``,
the browser off to ``checkout_url``, back on ``<frontend>/payment/success?tx_ref=...``,
where the front end calls ``GET /verify/:tx_ref``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import Mailbox, gateway_client
from tests.contract.shapes import NUMBER, assert_shape
from tests.support_auth import bare
from tests.support_booking import Buyer, new_buyer, wait_for_booking_status
from tests.support_events import create_event, signed_headers

pytestmark = pytest.mark.stack

#: payment = {ID, CreatedAt, UpdatedAt, DeletedAt, booking_id, user_id, amount, currency,
#: tx_ref, status}
PAYMENT = {
    "ID": int,
    "CreatedAt": str,
    "UpdatedAt": str,
    "DeletedAt": None,
    "booking_id": int,
    "user_id": int,
    "amount": NUMBER,
    "currency": str,
    "tx_ref": str,
    "status": str,
}
ERROR = {"error": str}
#: the original's front end, where the provider sends the buyer back (FRONTEND_URL default)
FRONTEND_URL = "http://localhost:3000"
PRICE_VIP = 400


@pytest.fixture(scope="module")
async def event() -> dict[str, Any]:
    async with gateway_client() as client:
        return await create_event(client, headers=signed_headers(), price_vip=PRICE_VIP)


_seats = iter(range(1, 11))


async def _booking(client: httpx.AsyncClient, buyer: Buyer, event: dict[str, Any]) -> int:
    """A pending booking of one VIP seat, booked with the front end's body."""
    number = next(_seats)
    seat = {"id": f"vip-1-{number}", "row": 1, "number": number, "price": PRICE_VIP}
    response = await client.post(
        "/api/bookings",
        json={"event_id": event["id"], "seat_count": 1, "amount": PRICE_VIP, "seats": [seat]},
        headers=bare(buyer.access_token),
    )
    assert response.status_code == 201, response.text
    return int(response.json()["booking"]["ID"])


def _original_body(buyer: Buyer, booking_id: int, **changes: Any) -> dict[str, Any]:
    return {
        "booking_id": booking_id,
        "user_id": buyer.user_id,
        "amount": PRICE_VIP,
        "email": buyer.email,
        "first_name": "Abebe",
        "last_name": "Bikila",
        **changes,
    }


# POST /payments/initialize and the provider's return


async def test_initialize_answers_a_checkout_url_and_the_provider_returns_to_the_front_end(
    client: httpx.AsyncClient, mailbox: Mailbox, event: dict[str, Any]
) -> None:
    buyer = await new_buyer(client, mailbox)
    booking_id = await _booking(client, buyer, event)

    response = await client.post(
        "/api/payments/initialize",
        json=_original_body(buyer, booking_id),
        headers=bare(buyer.access_token),
    )

    assert response.status_code == 200, response.text
    assert_shape(response.json(), {"checkout_url": str})
    checkout_url, tx_ref = response.json()["checkout_url"], response.json()["tx_ref"]
    page = await client.get(urlsplit(checkout_url).path)
    assert page.status_code == 200
    paid = await client.post(f"{urlsplit(checkout_url).path}/pay")
    assert paid.status_code == 303
    back = urlsplit(paid.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{FRONTEND_URL}/payment/success"
    assert parse_qs(back.query)["tx_ref"] == [tx_ref]


async def test_initialize_takes_the_payer_from_the_token_not_the_body(
    client: httpx.AsyncClient, mailbox: Mailbox, event: dict[str, Any]
) -> None:
    """Fixes that stay: ``user_id`` in a body is ignored in favour of the token."""
    buyer = await new_buyer(client, mailbox)
    booking_id = await _booking(client, buyer, event)

    response = await client.post(
        "/api/payments/initialize",
        json=_original_body(buyer, booking_id, user_id=buyer.user_id + 1),
        headers=buyer.headers,
    )
    verified = await client.get(
        f"/api/payments/verify/{response.json()['tx_ref']}", headers=buyer.headers
    )

    assert response.status_code == 200, response.text
    assert verified.json()["payment"]["user_id"] == buyer.user_id


async def test_initialize_with_another_amount_is_409_and_charges_nothing(
    client: httpx.AsyncClient, mailbox: Mailbox, event: dict[str, Any]
) -> None:
    """Fixes that stay: the server prices every payment; a differing amount is refused."""
    buyer = await new_buyer(client, mailbox)
    booking_id = await _booking(client, buyer, event)

    response = await client.post(
        "/api/payments/initialize",
        json=_original_body(buyer, booking_id, amount=1),
        headers=buyer.headers,
    )

    assert response.status_code == 409, response.text
    assert_shape(response.json(), ERROR)
    assert response.json()["code"] == "amount_mismatch"


async def test_initialize_for_someone_elses_booking_is_403(
    client: httpx.AsyncClient, mailbox: Mailbox, event: dict[str, Any]
) -> None:
    """Fixes that stay: paying a booking needs its owner's token."""
    owner, stranger = await new_buyer(client, mailbox), await new_buyer(client, mailbox)
    booking_id = await _booking(client, owner, event)

    response = await client.post(
        "/api/payments/initialize",
        json=_original_body(stranger, booking_id),
        headers=stranger.headers,
    )

    assert response.status_code == 403
    assert_shape(response.json(), ERROR)


# GET /payments/verify/:tx_ref


async def _initialized(
    client: httpx.AsyncClient, buyer: Buyer, event: dict[str, Any]
) -> tuple[int, str, str]:
    booking_id = await _booking(client, buyer, event)
    response = await client.post(
        "/api/payments/initialize", json=_original_body(buyer, booking_id), headers=buyer.headers
    )
    assert response.status_code == 200, response.text
    return booking_id, response.json()["checkout_url"], response.json()["tx_ref"]


@pytest.mark.parametrize(("action", "status"), [("pay", "success"), ("decline", "failed")])
async def test_verify_answers_message_and_payment(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    event: dict[str, Any],
    action: str,
    status: str,
) -> None:
    buyer = await new_buyer(client, mailbox)
    booking_id, checkout_url, tx_ref = await _initialized(client, buyer, event)
    pending = await client.get(f"/api/payments/verify/{tx_ref}", headers=bare(buyer.access_token))
    await client.post(f"{urlsplit(checkout_url).path}/{action}")

    response = await client.get(f"/api/payments/verify/{tx_ref}", headers=bare(buyer.access_token))

    assert pending.status_code == 200, pending.text
    assert_shape(pending.json(), {"message": str, "payment": PAYMENT})
    assert pending.json()["payment"]["status"] == "pending"
    assert response.status_code == 200, response.text
    assert_shape(response.json(), {"message": str, "payment": PAYMENT})
    payment = response.json()["payment"]
    assert payment["status"] == status
    assert (payment["booking_id"], payment["user_id"]) == (booking_id, buyer.user_id)
    assert (payment["amount"], payment["tx_ref"]) == (PRICE_VIP, tx_ref)
    booking_status = "confirmed" if status == "success" else "failed"
    await wait_for_booking_status(client, buyer, booking_id, booking_status)


async def test_verify_of_someone_elses_payment_is_403(
    client: httpx.AsyncClient, mailbox: Mailbox, event: dict[str, Any]
) -> None:
    """Fixes that stay: verifying a payment needs its payer's token."""
    owner, stranger = await new_buyer(client, mailbox), await new_buyer(client, mailbox)
    _, _, tx_ref = await _initialized(client, owner, event)

    response = await client.get(f"/api/payments/verify/{tx_ref}", headers=stranger.headers)

    assert response.status_code == 403
    assert_shape(response.json(), ERROR)
