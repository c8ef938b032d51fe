"""Request and response bodies of the ``/api/bookings`` and ``/internal/bookings`` routes.

Bookings keep the Go original's wire shape (ORIGINAL_API.md): gorm's ``ID``,
``CreatedAt``, ``UpdatedAt``, ``DeletedAt``, a ``seat_count``, ``seats`` as a JSON
*string* (its front end calls ``JSON.parse(booking.seats)``) and money as JSON numbers.
The port's own fields are additions; its structured seats are ``seat_list``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

import orjson
from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    computed_field,
    field_validator,
    model_validator,
)

from booking_service.models import BookingStatus, CheckinResult
from ticketing_common.pagination import MAX_ID
from ticketing_common.seats import SEAT_ID_MAX_LENGTH, SEAT_ID_PATTERN, TicketClass
from ticketing_common.wire import MAX_CLIENT_AMOUNT, GormFields, Money

_SEAT_ID = re.compile(SEAT_ID_PATTERN)
#: a hard ceiling on the body, far above any per-booking limit the settings allow
MAX_SEATS_IN_REQUEST = 100
CENT = Decimal("0.01")

ClientAmount = Annotated[
    Decimal | None, Field(None, ge=0, le=MAX_CLIENT_AMOUNT, allow_inf_nan=False)
]


class SeatChoice(BaseModel):
    """A reserved seat as the original's front end sends it: ``{id, row, number, price}``
    (``price`` is ignored: the server prices every seat)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(
        max_length=SEAT_ID_MAX_LENGTH,
        pattern=SEAT_ID_PATTERN,
        description="`<class>-<row>-<number>` as the seat map names it, e.g. `vip-1-4`",
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

    @property
    def ticket_class(self) -> str:
        return self.id.split("-", 1)[0]


class BookingCreate(BaseModel):
    """``seats`` (reserved seating), or ``seat_count`` of a ``ticket_class`` (general).

    The original's body ``{event_id, seat_count, amount, seats?}`` is accepted: with
    ``seats``, ``seat_count`` must count them and ``ticket_class`` (if sent) name their
    class; without, the class is ``normal`` unless ``ticket_class`` says otherwise.
    """

    model_config = ConfigDict(extra="ignore")

    event_id: StrictInt = Field(ge=1, le=2**63 - 1)
    seats: list[SeatChoice] | None = Field(None, min_length=1, max_length=MAX_SEATS_IN_REQUEST)
    #: a count is a number: ``true`` is not 1 (nor is ``"2"`` two)
    seat_count: StrictInt | None = Field(None, ge=1, le=MAX_SEATS_IN_REQUEST)
    ticket_class: TicketClass | None = Field(
        None, description="general seating's class, `normal` when left out"
    )
    amount: ClientAmount = Field(
        None,
        description="the total the client expects (the original's field): accepted when it "
        "equals the server's price, refused with 409 `amount_mismatch` when it differs",
    )
    total_amount: ClientAmount = Field(None, description="the same check, the port's name")

    @model_validator(mode="after")
    def _one_way_of_choosing_seats(self) -> Self:
        if self.seats is None:
            if self.seat_count is None:
                raise ValueError("send seats, or seat_count (and ticket_class, normal by default)")
            self.ticket_class = self.ticket_class or "normal"
            return self
        ids = [seat.id for seat in self.seats]
        if len(set(ids)) != len(ids):
            raise ValueError("a seat appears more than once")
        if self.seat_count is not None and self.seat_count != len(ids):
            raise ValueError(f"seat_count is {self.seat_count} but {len(ids)} seats were sent")
        if self.ticket_class is not None:
            other = next((s.id for s in self.seats if s.ticket_class != self.ticket_class), None)
            if other is not None:
                raise ValueError(f"seat {other} is not of ticket_class {self.ticket_class}")
        return self

    @property
    def seat_ids(self) -> list[str]:
        return sorted(seat.id for seat in self.seats or ())

    @property
    def client_totals(self) -> list[Decimal]:
        """The totals the client named (``amount``, ``total_amount``): each must be the
        server's price."""
        return [total for total in (self.amount, self.total_amount) if total is not None]


class BookedSeatOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seat_id: str
    ticket_class: TicketClass
    row: int
    number: int
    price: Money


def original_seats(seats: list[BookedSeatOut], order: list[str] | None = None) -> str:
    """The original's ``seats`` string: ``[{id, row, number, price}]`` in the client's
    ``order`` of seat ids (the stored order without one), each at the server's price."""
    by_id = {seat.seat_id: seat for seat in seats}
    listed = [by_id[seat_id] for seat_id in order] if order is not None else seats
    return orjson.dumps(
        [
            {"id": s.seat_id, "row": s.row, "number": s.number, "price": float(s.price)}
            for s in listed
        ]
    ).decode()


class BookingOut(GormFields):
    """A booking: the original's fields (gorm's from :class:`GormFields`, the computed ones
    below) and the port's."""

    model_config = ConfigDict(from_attributes=True)

    user_id: int
    event_id: int
    status: BookingStatus
    total_amount: Money
    currency: str
    expires_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    seat_list: list[BookedSeatOut] = Field(
        validation_alias=AliasChoices("seat_list", "seats"),
        description="the booking's seats with their class and price",
    )
    #: the ``seats`` string as stored with the booking (NULL only for very old rows)
    client_seats: str | None = Field(None, exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def seat_count(self) -> int:
        return len(self.seat_list)

    @computed_field(  # type: ignore[prop-decorator]
        description="JSON text of `[{id, row, number, price}]`: the seats as the client "
        "sent them (the seats assigned, for a count), each at the server's price"
    )
    @property
    def seats(self) -> str:
        return self.client_seats or original_seats(self.seat_list)


class BookingCreated(BaseModel):
    message: str
    booking: BookingOut


class TicketOut(BaseModel):
    """One seat's ticket: the code its QR code on the PDF encodes."""

    seat_id: str
    code: str = Field(description="`TKT2.<booking_id>.<event_id>.<seat_id>.<signature>`")


class BookingDetailOut(BookingOut):
    """One booking as ``GET /api/bookings/{id}`` answers it: with its tickets."""

    tickets: list[TicketOut] = Field(
        default_factory=list,
        description="each seat's ticket code once the booking is confirmed; empty otherwise",
    )


class BookingEnvelope(BaseModel):
    booking: BookingDetailOut


class BookingCancelledOut(BaseModel):
    message: str
    booking: BookingOut
    refund_requested: bool


class BookingList(BaseModel):
    bookings: list[BookingOut]


class SalesList(BaseModel):
    sales: list[BookingOut]


class TakenSeatOut(BaseModel):
    """A taken seat as the original's clients read it (``id``, ``row``, ``number``,
    ``price``, ``status``), with the port's ``seat_id`` and ``ticket_class``."""

    model_config = ConfigDict(from_attributes=True)

    seat_id: str
    ticket_class: TicketClass
    row: int
    number: int
    price: Money
    status: Literal["locked", "sold"] = Field(
        description="`locked` while its booking awaits payment, `sold` once paid"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        return self.seat_id


class TakenSeats(BaseModel):
    event_id: int
    seats: list[TakenSeatOut]


# -- check-in at the door -------------------------------------------------------------------

#: an offline door uploads at most this many scans at once (422 beyond): about 250 KB of
#: JSON at the longest codes, under the gateway's 512 KB for this route
MAX_SCANS_PER_BATCH = 1000

TicketCodeText = Annotated[
    str, Field(min_length=1, max_length=256, description="what the ticket's QR code says")
]
DeviceName = Annotated[
    str | None,
    Field(None, min_length=1, max_length=64, description="the scanner, as the door names it"),
]
ScanWinner = Literal["this_scan", "other_scan", "recorded"]


class CheckinRequest(BaseModel):
    code: TicketCodeText
    event_id: int | None = Field(
        None,
        ge=1,
        le=MAX_ID,
        description="the event this door admits to: a ticket of another answers `wrong_event`",
    )
    device: DeviceName = None


class CheckinOut(BaseModel):
    result: CheckinResult
    booking_id: int | None = Field(description="the booking a genuine code names")
    seat_id: str | None = Field(
        description="the seat a genuine code names (null: a first ticket's code, for its "
        "whole booking)"
    )
    checked_in_at: datetime | None = Field(
        description="when the ticket was let in: now (`ok`), or the first time "
        "(`already_checked_in`)"
    )


class OfflineScan(BaseModel):
    code: TicketCodeText
    scanned_at: AwareDatetime = Field(description="when the door scanned it, by its own clock")
    device: DeviceName = None

    @field_validator("scanned_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("not a time that can be stored") from exc


class CheckinBatch(BaseModel):
    event_id: int = Field(ge=1, le=MAX_ID, description="the event the door checked in")
    scans: list[OfflineScan] = Field(
        min_length=1, description=f"at most {MAX_SCANS_PER_BATCH:,} (422 beyond)"
    )


class OfflineScanOut(CheckinOut):
    """One uploaded scan: its result, and which scan of its seat won."""

    code: str
    conflict: bool = Field(
        description="the seat was scanned more than once (in this upload, or before it)"
    )
    winner: ScanWinner | None = Field(
        description="whose time stands as the check-in (`checked_in_at`): `this_scan`, "
        "`other_scan` (an earlier one in this upload) or `recorded` (an earlier check-in "
        "already recorded); null when nothing was checked in"
    )


class CheckinBatchOut(BaseModel):
    event_id: int
    scans: list[OfflineScanOut] = Field(description="one per scan sent, in the same order")


class CheckinStats(BaseModel):
    event_id: int
    checked_in: int = Field(description="seats of confirmed bookings checked in")
    sold: int = Field(description="seats of confirmed bookings")


class DoorTicket(BaseModel):
    code: str
    booking_id: int
    seat_id: str
    status: Literal["valid", "cancelled"]
    checked_in_at: datetime | None


class DoorBookingCode(BaseModel):
    """A first ticket's code (one per booking): it admits to every seat of its booking."""

    code: str
    booking_id: int
    seat_ids: list[str]
    status: Literal["valid", "cancelled"]


class DoorList(BaseModel):
    """What a door needs to check tickets offline: every code of the event's paid
    bookings, `valid` or `cancelled` (cancelled after payment)."""

    event_id: int
    generated_at: datetime
    tickets: list[DoorTicket]
    booking_codes: list[DoorBookingCode] = Field(
        description="codes of the first tickets, printed one per booking (`TKT1`)"
    )
