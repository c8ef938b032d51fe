"""The booking domain's expected failures, each with its HTTP status.

Errors that event_service decides and booking_service passes on (a seat taken, an unknown
seat, a started event) are the shared ones of :mod:`ticketing_common.internal.errors`.
"""

from __future__ import annotations

from ticketing_common.errors import Conflict, DomainError
from ticketing_common.internal.errors import (
    BookingNotFound,
    EventStarted,
    SeatsUnavailable,
    UnknownSeats,
)

__all__ = [
    "AmountMismatch",
    "BookingNotCancellable",
    "BookingNotFound",
    "BuyerLimitReached",
    "EventStarted",
    "IdempotencyKeyReused",
    "ScanFromTheFuture",
    "SeatsUnavailable",
    "TicketLimitReached",
    "TooManyHeldSeats",
    "TooManyPendingBookings",
    "TooManyScans",
    "UnknownSeats",
]


class AmountMismatch(Conflict):
    """The client named a total that differs from the server's price: nobody is booked
    at a sum they did not see (the original trusted the client's ``amount``)."""

    code = "amount_mismatch"


class BuyerLimitReached(Conflict):
    """One account may not hoard an event: its holds, pending bookings or tickets."""

    code = "buyer_limit_reached"


class TooManyHeldSeats(BuyerLimitReached):
    code = "too_many_held_seats"


class TooManyPendingBookings(BuyerLimitReached):
    code = "too_many_pending_bookings"


class TicketLimitReached(BuyerLimitReached):
    code = "ticket_limit_reached"


class BookingNotCancellable(Conflict):
    code = "booking_not_cancellable"


class IdempotencyKeyReused(DomainError):
    """The same ``Idempotency-Key`` came back with a different request body."""

    status_code = 422
    code = "idempotency_key_reused"

    @classmethod
    def default_message(cls) -> str:
        return "this Idempotency-Key was already used for a different booking request"


class TooManyScans(DomainError):
    """An offline door uploads its scans in batches of a bounded size."""

    status_code = 422
    code = "too_many_scans"


class ScanFromTheFuture(DomainError):
    """A scan dated later than now (beyond a small clock skew): the door's clock is wrong,
    and an earliest-wins upload must not trust it."""

    status_code = 422
    code = "scan_in_the_future"
