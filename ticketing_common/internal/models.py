"""Request and answer bodies of every ``/internal`` route, for both sides of the call.

Answers ignore fields they don't know (a callee may add one before its callers read it);
requests forbid them (a caller's typo is a bug, not something to guess at).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ticketing_common.seats import SEAT_ID_MAX_LENGTH, TicketClass

HOLD_TOKEN_PATTERN = r"^[A-Za-z0-9_.:\-]{1,128}$"  # noqa: S105 - a regex, not a secret
MAX_ID = 2**63 - 1


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- event_service: seat holds --------------------------------------------------------------


class HoldRequest(Request):
    """Named seats (``seat_ids``) or a number of seats of a class (``ticket_class`` + ``count``)."""

    token: Annotated[str, Field(pattern=HOLD_TOKEN_PATTERN)]
    seat_ids: list[Annotated[str, Field(max_length=SEAT_ID_MAX_LENGTH)]] | None = Field(
        None, min_length=1
    )
    ticket_class: TicketClass | None = None
    count: int | None = Field(None, ge=1)
    ttl_seconds: int | None = Field(None, ge=1)
    #: the buyer, and the pass its waiting room gave it (issue 20): an event whose room is
    #: on holds seats only for the buyer the pass names
    user_id: int | None = Field(None, ge=1)
    queue_pass: str | None = Field(None, max_length=2048)
    #: a waiting list's offer (issue 19): seats of a class whose freed seats are kept for
    #: its waiting list go to this hold only (by count), and no queue pass is asked for
    for_waitlist: bool = False
    #: when the caller stops waiting for the answer (Unix time, ms): a hold that would be
    #: taken later is refused, since nobody would book it; the caller that got no answer
    #: then releases the token (its retry or a late copy can no longer take seats after)
    not_after_ms: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> HoldRequest:
        by_count = self.ticket_class is not None or self.count is not None
        if self.seat_ids is not None and by_count:
            raise ValueError("send either seat_ids or ticket_class with count, not both")
        if self.seat_ids is None and (self.ticket_class is None or self.count is None):
            raise ValueError("send seat_ids, or ticket_class with count")
        if self.for_waitlist and self.seat_ids is not None:
            raise ValueError("a waiting list's offer holds a count of a class")
        return self

    @property
    def wanted(self) -> int:
        return len(self.seat_ids) if self.seat_ids is not None else self.count or 0

    def fingerprint(self) -> str:
        """Identifies the request, so a retry with the same token gets the same hold."""
        if self.seat_ids is not None:
            return "seats:" + ",".join(sorted(self.seat_ids))
        return f"count:{self.ticket_class}:{self.count}"


class HeldSeat(Answer):
    seat_id: str
    ticket_class: TicketClass
    row: int
    number: int
    price: Decimal


class HoldGranted(Answer):
    """A hold, with everything a booking needs to price and store it: no second call.

    The prices are those of the event version (``event_updated_at``) the hold was granted
    on, read atomically with the hold.
    """

    token: str
    event_id: int
    expires_at: datetime
    seats: list[HeldSeat]
    currency: str
    organizer_id: int
    event_title: str
    venue: str
    event_starts_at: datetime
    event_updated_at: datetime
    #: the organizer's cap on one buyer's tickets of the event (None: none)
    max_tickets_per_buyer: int | None = None

    @property
    def total(self) -> Decimal:
        return sum((seat.price for seat in self.seats), Decimal(0))


class ConfirmRequest(Request):
    booking_id: int = Field(ge=1, le=MAX_ID)


class ConfirmOut(Answer):
    seats: list[HeldSeat]


class EventView(Answer):
    """``GET /internal/events/{id}``: the event as other services read it."""

    id: int
    organizer_id: int
    title: str
    description: str
    date: datetime
    location: str
    currency: str
    seats_per_row: int
    price_normal: Decimal
    price_vip: Decimal
    price_vvip: Decimal
    seats_normal: int
    seats_vip: int
    seats_vvip: int
    available_normal: int
    available_vip: int
    available_vvip: int
    created_at: datetime
    updated_at: datetime


# -- booking_service ---------------------------------------------------------------------

BookingState = Literal["pending", "confirmed", "expired", "cancelled", "failed"]


class BookedSeatView(Answer):
    seat_id: str
    ticket_class: TicketClass
    row: int
    number: int
    price: Decimal


class BookingView(Answer):
    """``GET /internal/bookings/{id}``: what payments and tickets need of a booking."""

    id: int
    user_id: int
    event_id: int
    organizer_id: int
    status: BookingState
    total_amount: Decimal
    currency: str
    expires_at: datetime
    created_at: datetime
    confirmed_at: datetime | None = None
    cancelled_at: datetime | None = None
    hold_token: str
    payment_tx_ref: str | None = None
    seats: list[BookedSeatView]
    # Known for bookings made since the hold carries the event (None before).
    event_title: str | None = None
    event_starts_at: datetime | None = None
    venue: str | None = None
    buyer_email: str | None = None


class LiveHold(Answer):
    """A pending booking's hold as booking_db records it: what a seat-gate rebuild restores."""

    token: str
    seat_ids: list[str]
    expires_at: datetime


class LiveHolds(Answer):
    event_id: int
    holds: list[LiveHold]


class WaitlistOfferRequest(Request):
    """``POST /internal/bookings/offers``: a pending booking for a waiting list's entry
    (event_service asks; the same ``key`` again returns the same booking)."""

    key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]
    user_id: int = Field(ge=1, le=MAX_ID)
    buyer_email: str | None = Field(None, max_length=320)
    event_id: int = Field(ge=1, le=MAX_ID)
    ticket_class: TicketClass
    seat_count: int = Field(ge=1, le=100)
    hold_ttl_seconds: int = Field(ge=1)


class WaitlistOffer(Answer):
    """``offered`` with the booking; ``short`` when the seats went meanwhile (the entry
    waits on); ``refused`` when this buyer cannot have them (a per-buyer limit, the event
    started), with the reason's ``code`` and ``message``."""

    outcome: Literal["offered", "short", "refused"]
    booking: BookingView | None = None
    code: str | None = None
    message: str | None = None


# -- auth_service ------------------------------------------------------------------------


class UserView(Answer):
    """``GET /internal/users/{id}``."""

    id: int
    email: str
    role: str
