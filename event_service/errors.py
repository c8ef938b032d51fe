"""event_service's domain errors (statuses come from the shared error model).

Those a caller of the internal API may meet live in :mod:`ticketing_common.internal.errors`
and are re-exported here; the rest only ever reach the public API.
"""

from __future__ import annotations

from ticketing_common.errors import Conflict, Forbidden, NotFound
from ticketing_common.internal.errors import (
    BookingReleased,
    EventNotFound,
    EventStarted,
    HoldExpired,
    HoldTokenInUse,
    QueuePassInvalid,
    QueuePassRequired,
    SeatsUnavailable,
    UnknownSeats,
)

__all__ = [
    "BookingReleased",
    "CapacityInUse",
    "ClassNotSoldOut",
    "EventNotFound",
    "EventStarted",
    "HoldExpired",
    "HoldTokenInUse",
    "NotEventOwner",
    "NotInQueue",
    "NotOnWaitlist",
    "OfferInProgress",
    "QueueNotEnabled",
    "QueuePassInvalid",
    "QueuePassRequired",
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


class QueueNotEnabled(Conflict):
    code = "queue_not_enabled"

    @classmethod
    def default_message(cls) -> str:
        return "this event has no waiting room: book directly"


class NotInQueue(NotFound):
    code = "not_in_queue"

    @classmethod
    def default_message(cls) -> str:
        return "you have not joined this event's queue"


class ClassNotSoldOut(Conflict):
    """A waiting list opens only once nothing of its class is free."""

    code = "class_not_sold_out"


class NotOnWaitlist(NotFound):
    code = "not_on_waitlist"

    @classmethod
    def default_message(cls) -> str:
        return "you are not on this event's waiting list"


class OfferInProgress(Conflict):
    """The entry's seats are being offered: its booking is the buyer's to cancel."""

    code = "offer_in_progress"
