"""Request and response bodies of the ``/api/bookings`` and ``/internal/bookings`` routes."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from booking_service.models import BookingStatus
from ticketing_common.seats import SEAT_ID_MAX_LENGTH, SEAT_ID_PATTERN, TicketClass

_SEAT_ID = re.compile(SEAT_ID_PATTERN)
#: a hard ceiling on the body, far above any per-booking limit the settings allow
MAX_SEATS_IN_REQUEST = 100


class SeatChoice(BaseModel):
    """A reserved seat as the original's clients send it: ``{id, row, number}``."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(
        max_length=SEAT_ID_MAX_LENGTH,
        pattern=SEAT_ID_PATTERN,
        description="`<class>-<row>-<number>`, e.g. `vip-1-4`",
    )
    row: int | None = Field(None, ge=1, description="optional; must match the id")
    number: int | None = Field(None, ge=1, description="optional; must match the id")

    @model_validator(mode="after")
    def _row_and_number_match_id(self) -> Self:
        match = _SEAT_ID.match(self.id)
        assert match is not None  # the field pattern already held
        if self.row is not None and self.row != int(match.group(2)):
            raise ValueError(f"row {self.row} does not match seat id {self.id}")
        if self.number is not None and self.number != int(match.group(3)):
            raise ValueError(f"number {self.number} does not match seat id {self.id}")
        return self


class BookingCreate(BaseModel):
    """Either ``seats`` (reserved seating) or ``seat_count`` + ``ticket_class`` (general)."""

    model_config = ConfigDict(extra="ignore")

    event_id: StrictInt = Field(ge=1, le=2**63 - 1)
    seats: list[SeatChoice] | None = Field(None, min_length=1, max_length=MAX_SEATS_IN_REQUEST)
    #: a count is a number: ``true`` is not 1 (nor is ``"2"`` two)
    seat_count: StrictInt | None = Field(None, ge=1, le=MAX_SEATS_IN_REQUEST)
    ticket_class: TicketClass | None = None
    total_amount: Decimal | None = Field(
        None,
        description="ignored when it equals the server's price, refused when it differs",
    )

    @model_validator(mode="after")
    def _one_way_of_choosing_seats(self) -> Self:
        general = self.seat_count is not None or self.ticket_class is not None
        if self.seats is not None and general:
            raise ValueError("send either seats or seat_count with ticket_class, not both")
        if self.seats is None:
            if self.seat_count is None or self.ticket_class is None:
                raise ValueError("send seats, or seat_count together with ticket_class")
            return self
        ids = [seat.id for seat in self.seats]
        if len(set(ids)) != len(ids):
            raise ValueError("a seat appears more than once")
        return self

    @property
    def seat_ids(self) -> list[str]:
        return sorted(seat.id for seat in self.seats or ())


class BookedSeatOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seat_id: str
    ticket_class: TicketClass
    row: int
    number: int
    price: Decimal


class BookingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    event_id: int
    status: BookingStatus
    total_amount: Decimal
    currency: str
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    seats: list[BookedSeatOut]


class BookingCreated(BaseModel):
    message: str
    booking: BookingOut


class BookingEnvelope(BaseModel):
    booking: BookingOut


class BookingCancelledOut(BaseModel):
    message: str
    booking: BookingOut
    refund_requested: bool


class BookingList(BaseModel):
    bookings: list[BookingOut]


class SalesList(BaseModel):
    sales: list[BookingOut]


class TakenSeatOut(BaseModel):
    seat_id: str
    ticket_class: TicketClass
    row: int
    number: int
    status: Literal["locked", "sold"] = Field(
        description="`locked` while its booking awaits payment, `sold` once paid"
    )


class TakenSeats(BaseModel):
    event_id: int
    seats: list[TakenSeatOut]
