"""Open the provider's checkout for a pending booking: the payment side of an on-sale.

In the common case (``booking_created`` has left this service its record of the booking)
initialize asks no other service and makes two round trips to payment_db, each a single
statement that commits on its own, with no connection held in between:

1. :data:`OPEN` reads the booking's record and its active payment and, if the booking is
   payable, has none, and the buyer named no other amount than its total, inserts the
   pending payment with its checkout requested;
2. the provider opens the checkout, while no transaction is open;
3. :data:`SAVE` stores the checkout URL and the provider's reference.

They run on asyncpg directly, as booking_service's hot write does: through a SQLAlchemy
session each statement would also cost a BEGIN and a COMMIT round trip and the ORM's CPU.

Concurrent initializes of one booking make one payment (the unique active-payment
index); the others wait for its checkout while ``checkout_requested_at`` shows a request
in flight. A request that failed clears that mark, and one that died with its process
lapses after :data:`REQUEST_LAPSES_AFTER`; the next initialize then asks the provider
again: under the same ``tx_ref`` if the provider answers a repeated initialize with the
same checkout (the simulated one), under a new one if it refuses a used ``tx_ref``
(Chapa). A checkout whose URL nobody received cannot be paid, so dropping its ``tx_ref``
loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

import asyncpg

from payment_service import payable_bookings
from payment_service.errors import AmountMismatch, BookingNotPayable, PaymentAlreadyMade
from payment_service.metrics import BOOKING_LOOKUPS, PAYMENTS
from payment_service.models import PayableStatus, PaymentStatus
from payment_service.providers import (
    CheckoutRequest,
    PaymentProvider,
    ProviderError,
    ProviderRejected,
)
from payment_service.schemas import CheckoutResponse, InitializePaymentRequest
from payment_service.service import new_tx_ref
from payment_service.settings import PaymentSettings
from ticketing_common.errors import Forbidden, ServiceUnavailable, UpstreamError
from ticketing_common.http_client import InternalClient
from ticketing_common.internal.errors import BookingNotFound
from ticketing_common.security import Principal

logger = logging.getLogger("payment.initialize")

#: the longest a provider may take to open a checkout before the request is given up
REQUEST_SECONDS = 30.0
#: a checkout request older than this is dead (its process died): another may take over
REQUEST_LAPSES_AFTER = REQUEST_SECONDS + 5.0
#: how often a concurrent initialize looks whether the checkout in flight has opened
_POLL_FIRST, _POLL_MAX = 0.02, 0.25
CENT = Decimal("0.01")

OPEN = """
WITH record AS (
    SELECT booking_id, user_id, status, amount, currency, event_title, description,
           buyer_email, expires_at <= now() AS expired
    FROM payable_bookings WHERE booking_id = $1
), active AS (
    SELECT p.tx_ref, p.status, p.checkout_url
    FROM payments p JOIN record r ON p.booking_id = r.booking_id
    WHERE p.status IN ('pending', 'success')
), opened AS (
    INSERT INTO payments (booking_id, user_id, tx_ref, amount, currency, status, provider,
                          email, first_name, last_name, checkout_requested_at,
                          created_at, updated_at)
    SELECT r.booking_id, r.user_id, $3::text, r.amount, r.currency, 'pending', $4::text,
           coalesce($5::text, r.buyer_email), $6::text, $7::text, now(), now(), now()
    FROM record r
    WHERE r.user_id = $2 AND r.status = 'pending' AND NOT r.expired
      AND ($8::numeric IS NULL OR $8::numeric = r.amount)
      AND NOT EXISTS (SELECT FROM active)
    ON CONFLICT (booking_id) WHERE status IN ('pending', 'success') DO NOTHING
    RETURNING id, tx_ref, amount, currency, email, first_name, last_name
)
SELECT r.user_id, r.status AS booking_status, coalesce(r.expired, false) AS expired,
       r.amount AS booking_amount, r.event_title, r.description, a.tx_ref AS active_tx_ref,
       a.status AS active_status, a.checkout_url AS active_checkout_url,
       o.id, o.tx_ref, o.amount, o.currency, o.email, o.first_name, o.last_name
FROM record r LEFT JOIN active a ON true LEFT JOIN opened o ON true
"""

# Take over the booking's checkout request once it failed or lapsed ($2: a new tx_ref, or
# NULL to keep it); either way, answer how the active payment stands.
TAKE_OVER = """
WITH claimed AS (
    UPDATE payments
    SET checkout_requested_at = now(), updated_at = now(), tx_ref = coalesce($2::text, tx_ref)
    WHERE booking_id = $1 AND status = 'pending' AND checkout_url IS NULL
      AND (checkout_requested_at IS NULL
           OR checkout_requested_at < now() - make_interval(secs => $3))
    RETURNING id, tx_ref
)
SELECT p.id, p.status, p.checkout_url, c.id IS NOT NULL AS claimed,
       coalesce(c.tx_ref, p.tx_ref) AS tx_ref, p.amount, p.currency, p.email,
       p.first_name, p.last_name
FROM payments p LEFT JOIN claimed c ON c.id = p.id
WHERE p.booking_id = $1 AND p.status IN ('pending', 'success')
"""

SAVE = """
UPDATE payments SET checkout_url = $3, provider_reference = $4, updated_at = now()
WHERE id = $1 AND tx_ref = $2
"""

# The provider did not open the checkout: the next initialize may ask again at once.
GIVE_UP = """
UPDATE payments SET checkout_requested_at = NULL, updated_at = now()
WHERE id = $1 AND tx_ref = $2 AND checkout_url IS NULL
"""


def _return_url(settings: PaymentSettings, tx_ref: str) -> str:
    """Where the provider returns the buyer: ``FRONTEND_URL/payment/success?tx_ref=...``
    by default, as the original (a provider that adds nothing still names the payment)."""
    separator = "&" if "?" in settings.return_url else "?"
    return settings.return_url + separator + urlencode({"tx_ref": tx_ref})


@dataclass(frozen=True, slots=True)
class _Offer:
    """A checkout this initialize asks the provider to open, for its payment row."""

    payment_id: int
    checkout: CheckoutRequest


@dataclass(frozen=True, slots=True)
class _Found:
    """What :data:`OPEN` found: the booking's record, and its active payment if any."""

    user_id: int
    booking_status: str
    expired: bool
    amount: Decimal
    title: str | None
    description: str | None
    tx_ref: str | None
    payment_status: str | None
    checkout_url: str | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> _Found:
        return cls(
            user_id=row["user_id"],
            booking_status=row["booking_status"],
            expired=row["expired"],
            amount=row["booking_amount"],
            title=row["event_title"],
            description=row["description"],
            tx_ref=row["active_tx_ref"],
            payment_status=row["active_status"],
            checkout_url=row["active_checkout_url"],
        )

    def check(self, principal: Principal, amount: Decimal | None) -> None:
        """Refuse what cannot be paid, or not at the ``amount`` the buyer named; the owner
        check first, so a stranger learns nothing."""
        if self.user_id != principal.user_id:
            raise Forbidden("you can only pay for your own bookings")
        if self.payment_status == PaymentStatus.SUCCESS:
            raise PaymentAlreadyMade("this booking is already paid")
        if self.booking_status != PayableStatus.PENDING:
            raise BookingNotPayable("the booking is no longer pending; it cannot be paid")
        if self.expired:
            raise BookingNotPayable("the booking's hold has expired; it cannot be paid")
        if amount is not None and amount != self.amount:
            raise AmountMismatch(
                f"amount {amount} is not the booking's total ({self.amount}): "
                "pay the booking's total_amount, or send no amount",
                details={"amount": float(amount), "total_amount": float(self.amount)},
            )

    def checkout(self, settings: PaymentSettings, payment: asyncpg.Record) -> CheckoutRequest:
        """The provider's request for ``payment`` (a row with the payment's columns)."""
        return CheckoutRequest(
            tx_ref=payment["tx_ref"],
            amount=payment["amount"],
            currency=payment["currency"],
            title=self.title or "Tickets",
            description=self.description or "",
            return_url=_return_url(settings, payment["tx_ref"]),
            callback_url=settings.callback_url,
            email=payment["email"],
            first_name=payment["first_name"],
            last_name=payment["last_name"],
        )


async def initialize_payment(
    pg: asyncpg.Pool,
    *,
    http: InternalClient,
    provider: PaymentProvider,
    settings: PaymentSettings,
    principal: Principal,
    request: InitializePaymentRequest,
) -> CheckoutResponse:
    """Open (or answer the already open) checkout of the caller's pending booking.

    Amount and currency come from the booking's record, never from the request; an
    ``amount`` in it must be that one (no payment is opened otherwise).
    """
    amount = request.amount.quantize(CENT) if request.amount is not None else None
    found, opened = await _open(pg, provider, principal, request, amount)
    if found is None:
        await payable_bookings.fetch_and_store(pg, http, settings, request.booking_id)
        found, opened = await _open(pg, provider, principal, request, amount)
        if found is None:  # booking_service knows it, yet its stored record is gone
            raise BookingNotFound()
        BOOKING_LOOKUPS.labels("fetched").inc()
    else:
        BOOKING_LOOKUPS.labels("record").inc()
    found.check(principal, amount)
    if found.checkout_url is not None and found.tx_ref is not None:
        return CheckoutResponse(checkout_url=found.checkout_url, tx_ref=found.tx_ref)
    if opened is not None:
        offer = _Offer(opened["id"], found.checkout(settings, opened))
        return await _request_checkout(pg, provider, offer)
    return await _take_over_or_wait(pg, provider, settings, found, request.booking_id)


async def _open(
    pg: asyncpg.Pool,
    provider: PaymentProvider,
    principal: Principal,
    request: InitializePaymentRequest,
    amount: Decimal | None,
) -> tuple[_Found | None, asyncpg.Record | None]:
    """Run :data:`OPEN`: what it found (``None``: no record of the booking), and the
    payment it inserted, if it did."""
    row = await pg.fetchrow(
        OPEN,
        request.booking_id,
        principal.user_id,
        new_tx_ref(request.booking_id),
        provider.name,
        request.email or principal.email,
        request.first_name,
        request.last_name,
        amount,
    )
    if row is None:
        return None, None
    return _Found.of(row), row if row["id"] is not None else None


async def _take_over_or_wait(
    pg: asyncpg.Pool,
    provider: PaymentProvider,
    settings: PaymentSettings,
    found: _Found,
    booking_id: int,
) -> CheckoutResponse:
    """The booking's pending payment has no checkout yet: answer the one a concurrent
    initialize is opening once it is there, or take the request over once it failed or
    lapsed. Each look is one short statement; no connection is held while waiting."""
    fresh_tx_ref = not provider.idempotent_initialize
    deadline = time.monotonic() + REQUEST_LAPSES_AFTER + 1.0
    pause = _POLL_FIRST
    while True:
        tx_ref = new_tx_ref(booking_id) if fresh_tx_ref else None
        row = await pg.fetchrow(TAKE_OVER, booking_id, tx_ref, REQUEST_LAPSES_AFTER)
        if row is None:
            raise ServiceUnavailable("the booking's payment changed meanwhile, try again")
        if row["status"] == PaymentStatus.SUCCESS:
            raise PaymentAlreadyMade("this booking is already paid")
        if row["checkout_url"] is not None:
            return CheckoutResponse(checkout_url=row["checkout_url"], tx_ref=row["tx_ref"])
        if row["claimed"]:
            if tx_ref is not None:
                logger.info(
                    "checkout asked again under a new tx_ref",
                    extra={"booking_id": booking_id, "tx_ref": tx_ref},
                )
            offer = _Offer(row["id"], found.checkout(settings, row))
            return await _request_checkout(pg, provider, offer)
        if time.monotonic() > deadline:
            raise ServiceUnavailable("the checkout is still being opened, try again shortly")
        await asyncio.sleep(pause)
        pause = min(pause * 2, _POLL_MAX)


async def _request_checkout(
    pg: asyncpg.Pool, provider: PaymentProvider, offer: _Offer
) -> CheckoutResponse:
    """Ask the provider (no connection held meanwhile), then save what it answered.

    When it opens nothing, the request is given up at once, so a retry asks again.
    """
    tx_ref = offer.checkout.tx_ref
    try:
        async with asyncio.timeout(REQUEST_SECONDS):
            opened = await provider.initialize(offer.checkout)
    except Exception as exc:
        await pg.execute(GIVE_UP, offer.payment_id, tx_ref)
        if isinstance(exc, ProviderRejected):
            raise UpstreamError(f"payment provider refused the checkout: {exc}") from exc
        if isinstance(exc, ProviderError | TimeoutError):
            raise ServiceUnavailable("payment provider unavailable, try again shortly") from exc
        raise
    saved = await pg.execute(SAVE, offer.payment_id, tx_ref, opened.checkout_url, opened.reference)
    if saved != "UPDATE 1":  # taken over meanwhile (a stall past the lapse): ours is stale
        raise ServiceUnavailable("the checkout is being opened again, try again shortly")
    PAYMENTS.labels("initialized").inc()
    return CheckoutResponse(checkout_url=opened.checkout_url, tx_ref=tx_ref)
