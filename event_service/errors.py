"""event_service's domain errors (statuses come from the shared error model)."""

from __future__ import annotations

from ticketing_common.errors import BadRequest, Conflict, Forbidden, NotFound


class EventNotFound(NotFound):
    code = "event_not_found"

    def __init__(self) -> None:
        super().__init__("event not found")


class NotEventOwner(Forbidden):
    code = "not_event_owner"

    def __init__(self) -> None:
        super().__init__("only the event's organizer can change it")


class UnknownSeats(BadRequest):
    code = "unknown_seats"

    def __init__(self, seat_ids: list[str]) -> None:
        super().__init__(
            "these seats do not exist in this event: " + ", ".join(seat_ids[:20]),
            details={"seat_ids": seat_ids},
        )


class SeatsUnavailable(Conflict):
    code = "seats_unavailable"


class EventStarted(Conflict):
    code = "event_started"

    def __init__(self) -> None:
        super().__init__("the event has already started; its seats are no longer sold")


class HoldTokenInUse(Conflict):
    code = "hold_token_in_use"


class HoldExpired(Conflict):
    code = "hold_expired"

    def __init__(self) -> None:
        super().__init__("the hold has expired or was released; its seats are no longer held")


class BookingReleased(Conflict):
    code = "booking_released"

    def __init__(self) -> None:
        super().__init__("this booking was cancelled and its seats released")


class CapacityInUse(Conflict):
    code = "capacity_in_use"
