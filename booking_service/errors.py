"""The booking domain's expected failures, each with its HTTP status."""

from __future__ import annotations

from ticketing_common.errors import BadRequest, Conflict, DomainError, NotFound


class SeatsUnavailable(Conflict):
    """At least one requested seat is held or sold by someone else."""

    code = "seats_unavailable"

    @classmethod
    def default_message(cls) -> str:
        return "some of the requested seats are no longer available"


class UnknownSeats(BadRequest):
    code = "unknown_seats"


class AmountMismatch(BadRequest):
    """The client named a total that differs from the server's price."""

    code = "amount_mismatch"


class BookingNotFound(NotFound):
    code = "booking_not_found"

    @classmethod
    def default_message(cls) -> str:
        return "booking not found"


class BookingNotCancellable(Conflict):
    code = "booking_not_cancellable"


class EventAlreadyStarted(Conflict):
    code = "event_started"

    @classmethod
    def default_message(cls) -> str:
        return "the event has already started; its tickets are no longer sold"


class IdempotencyKeyReused(DomainError):
    """The same ``Idempotency-Key`` came back with a different request body."""

    status_code = 422
    code = "idempotency_key_reused"

    @classmethod
    def default_message(cls) -> str:
        return "this Idempotency-Key was already used for a different booking request"
