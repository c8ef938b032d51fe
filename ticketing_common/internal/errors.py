"""Domain errors that cross the internal API.

The service that decides raises one of these; its JSON error carries the class's ``code``,
and the caller's client raises the same class again (see :func:`remote_error`). A seat
taken in event_service is then :class:`SeatsUnavailable` in booking_service as well, with
the same message and details, and no caller parses error strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ticketing_common.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    UpstreamError,
)


class SeatsUnavailable(Conflict):
    """At least one requested seat is held or sold by someone else (or a class is short)."""

    code = "seats_unavailable"

    @classmethod
    def default_message(cls) -> str:
        return "some of the requested seats are no longer available"


class UnknownSeats(BadRequest):
    code = "unknown_seats"

    @classmethod
    def of(cls, seat_ids: Sequence[str], event_id: int | None = None) -> UnknownSeats:
        where = f"event {event_id}" if event_id is not None else "this event"
        return cls(
            f"no such seats at {where}: " + ", ".join(list(seat_ids)[:20]),
            details={"seat_ids": list(seat_ids)},
        )


class HoldTooLong(BadRequest):
    """A hold asked for longer than event_service's ``MAX_HOLD_TTL_SECONDS``."""

    code = "hold_too_long"


class HoldTooLate(DomainError):
    """The hold reached the seat gate after its caller's ``not_after_ms``: nothing held."""

    status_code = 503
    code = "hold_too_late"


class EventNotFound(NotFound):
    code = "event_not_found"

    @classmethod
    def default_message(cls) -> str:
        return "event not found"


class EventStarted(Conflict):
    code = "event_started"

    @classmethod
    def default_message(cls) -> str:
        return "the event has already started; its tickets are no longer sold"


class HoldTokenInUse(Conflict):
    code = "hold_token_in_use"


class HoldExpired(Conflict):
    code = "hold_expired"

    @classmethod
    def default_message(cls) -> str:
        return "the hold has expired or was released; its seats are no longer held"


class BookingReleased(Conflict):
    code = "booking_released"

    @classmethod
    def default_message(cls) -> str:
        return "this booking was cancelled and its seats released"


class QueuePassRequired(DomainError):
    """The event sells through its waiting room: a booking needs the buyer's pass."""

    status_code = 428
    code = "queue_pass_required"

    @classmethod
    def default_message(cls) -> str:
        return (
            "this event sells through its waiting room: join the queue "
            "(POST /api/events/{id}/queue) and book with the pass in X-Queue-Pass"
        )


class QueuePassInvalid(Forbidden):
    """The pass is not this buyer's for this event, or it lapsed."""

    code = "queue_pass_invalid"

    @classmethod
    def default_message(cls) -> str:
        return "the queue pass is not valid for this buyer and event"


class BookingNotFound(NotFound):
    code = "booking_not_found"

    @classmethod
    def default_message(cls) -> str:
        return "booking not found"


class UserNotFound(NotFound):
    code = "user_not_found"

    @classmethod
    def default_message(cls) -> str:
        return "user not found"


#: code -> the class a caller raises again
WIRE_ERRORS: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        SeatsUnavailable,
        UnknownSeats,
        HoldTooLong,
        HoldTooLate,
        EventNotFound,
        EventStarted,
        HoldTokenInUse,
        HoldExpired,
        BookingReleased,
        QueuePassRequired,
        QueuePassInvalid,
        BookingNotFound,
        UserNotFound,
    )
}


def remote_error(status: int, body: Any, service: str) -> DomainError:
    """The error another service answered with, as this side raises it.

    A known code comes back as its own class; anything else (a validation error, a wrong
    service token, a 5xx) is the callee's or the caller's bug, never the end user's, and
    becomes a 502 :class:`UpstreamError`.
    """
    error = body if isinstance(body, dict) else {}
    cls = WIRE_ERRORS.get(str(error.get("code")))
    message = error.get("error") if isinstance(error.get("error"), str) else None
    if cls is not None and cls.status_code == status:
        return cls(message, details=error.get("details"))
    return UpstreamError(f"{service} answered {status}" + (f": {message}" if message else ""))
