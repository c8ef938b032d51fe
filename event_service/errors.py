"""event_service's domain errors (statuses come from the shared error model).

Those a caller of the internal API may meet live in :mod:`ticketing_common.internal.errors`
and are re-exported here; the rest only ever reach the public API.
"""

from __future__ import annotations

from ticketing_common.errors import Conflict, Forbidden
from ticketing_common.internal.errors import (
    BookingReleased,
    EventNotFound,
    EventStarted,
    HoldExpired,
    HoldTokenInUse,
    SeatsUnavailable,
    UnknownSeats,
)

__all__ = [
    "BookingReleased",
    "CapacityInUse",
    "EventNotFound",
    "EventStarted",
    "HoldExpired",
    "HoldTokenInUse",
    "NotEventOwner",
    "RescheduleTooSoon",
    "SeatsUnavailable",
    "UnknownSeats",
]


class NotEventOwner(Forbidden):
    code = "not_event_owner"

    @classmethod
    def default_message(cls) -> str:
        return "only the event's organizer can change it"


class CapacityInUse(Conflict):
    code = "capacity_in_use"


class RescheduleTooSoon(Conflict):
    """The event has tickets out and the new date is too close to now."""

    code = "reschedule_too_soon"
