"""Request and response bodies of event_service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    field_validator,
    model_validator,
)

from ticketing_common.errors import BadRequest
from ticketing_common.seats import (
    MAX_SEATS_PER_CLASS,
    MAX_SEATS_PER_ROW,
    TICKET_CLASSES,
    TicketClass,
)
from ticketing_common.wire import GormFields, Money

MAX_SEATS_PER_EVENT = 100_000
MAX_PRICE = Decimal("1000000")
LATEST_EVENT_DATE = timedelta(days=5 * 366)

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Location = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
CENT = Decimal("0.01")
Price = Annotated[
    Decimal,
    Field(ge=0, le=MAX_PRICE, max_digits=12, decimal_places=2),
    AfterValidator(lambda value: value.quantize(CENT)),
]
Capacity = Annotated[int, Field(ge=0, le=MAX_SEATS_PER_CLASS)]
SeatsPerRow = Annotated[int, Field(ge=1, le=MAX_SEATS_PER_ROW)]
TicketsPerBuyer = Annotated[
    int,
    Field(ge=1, le=MAX_SEATS_PER_CLASS, description="most tickets one buyer may have of it"),
]
SeatStatus = Literal["available", "held", "sold"]
AdmitPerMinute = Annotated[
    int, Field(ge=1, le=60_000, description="buyers the waiting room admits per minute")
]


def _utc(value: datetime | None) -> datetime | None:
    """Naive datetimes are read as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _future_utc(value: datetime) -> datetime:
    """Naive datetimes are read as UTC; an event must start in the future (within 5 years)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    now = datetime.now(UTC)
    if value <= now:
        raise ValueError("the event date must be in the future")
    if value > now + LATEST_EVENT_DATE:
        raise ValueError("the event date must be within five years")
    return value


class _EventFields(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("date", check_fields=False)
    @classmethod
    def _date_in_future(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _future_utc(value)


class EventCreate(_EventFields):
    """A new event. A class's price is needed only if the class has seats."""

    title: Title
    description: Description = ""
    date: datetime
    location: Location
    price_normal: Price | None = None
    price_vip: Price | None = None
    price_vvip: Price | None = None
    seats_normal: Capacity = 0
    seats_vip: Capacity = 0
    seats_vvip: Capacity = 0
    seats_per_row: SeatsPerRow = 10
    max_tickets_per_buyer: TicketsPerBuyer | None = None
    #: the on-sale's waiting room (issue 20)
    queue_enabled: bool = False
    onsale_at: datetime | None = None
    #: null: the service's default rate
    queue_admit_per_minute: AdmitPerMinute | None = None

    @field_validator("onsale_at")
    @classmethod
    def _onsale_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)

    @model_validator(mode="after")
    def _seats_and_prices(self) -> EventCreate:
        total = self.seats_normal + self.seats_vip + self.seats_vvip
        if total < 1:
            raise ValueError("an event needs at least one seat")
        if total > MAX_SEATS_PER_EVENT:
            raise ValueError(f"an event has at most {MAX_SEATS_PER_EVENT} seats")
        for ticket_class in TICKET_CLASSES:
            if (
                getattr(self, f"seats_{ticket_class}")
                and getattr(self, f"price_{ticket_class}") is None
            ):
                raise ValueError(f"price_{ticket_class} is required when the class has seats")
        if self.onsale_at is not None and self.onsale_at >= self.date:
            raise ValueError("onsale_at must be before the event's date")
        return self

    def prices(self) -> dict[str, Decimal]:
        return {c: getattr(self, f"price_{c}") or Decimal("0.00") for c in TICKET_CLASSES}


#: fields an update may set to null
NULLABLE_UPDATES = frozenset({"max_tickets_per_buyer", "onsale_at", "queue_admit_per_minute"})


class EventUpdate(_EventFields):
    """A partial update: only the fields sent change; none of them may be null."""

    title: Title | None = None
    description: Description | None = None
    date: datetime | None = None
    location: Location | None = None
    price_normal: Price | None = None
    price_vip: Price | None = None
    price_vvip: Price | None = None
    seats_normal: Capacity | None = None
    seats_vip: Capacity | None = None
    seats_vvip: Capacity | None = None
    seats_per_row: SeatsPerRow | None = None
    #: null lifts the cap
    max_tickets_per_buyer: TicketsPerBuyer | None = None
    queue_enabled: bool | None = None
    #: null: the sale is open now
    onsale_at: datetime | None = None
    #: null: the service's default rate
    queue_admit_per_minute: AdmitPerMinute | None = None
    total_seats: int | None = Field(
        None,
        ge=1,
        le=MAX_SEATS_PER_EVENT,
        description="the original's capacity field: the normal class grows or shrinks at its "
        "end so that all classes add up to it (never below what is held or sold)",
    )

    @field_validator("onsale_at")
    @classmethod
    def _onsale_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)

    @model_validator(mode="after")
    def _no_nulls(self) -> EventUpdate:
        nulls = sorted(
            name
            for name in self.model_fields_set
            if getattr(self, name) is None and name not in NULLABLE_UPDATES
        )
        if nulls:
            raise ValueError(f"fields cannot be null: {', '.join(nulls)}")
        if not self.model_fields_set:
            raise ValueError("nothing to update")
        return self

    def changes(self) -> dict[str, Any]:
        """The columns to set (``total_seats`` is not one: see :meth:`with_total_seats`)."""
        return {
            name: getattr(self, name) for name in self.model_fields_set if name != "total_seats"
        }

    def with_total_seats(self, seats_vip: int, seats_vvip: int) -> dict[str, Any]:
        """:meth:`changes`, with ``total_seats`` turned into the normal class's size given
        the event's ``seats_vip`` and ``seats_vvip`` (unless this update sets them)."""
        changes = self.changes()
        if self.total_seats is None:
            return changes
        vip = changes.get("seats_vip", seats_vip)
        vvip = changes.get("seats_vvip", seats_vvip)
        normal = self.total_seats - vip - vvip
        if normal < 0:
            raise BadRequest(
                f"total_seats {self.total_seats} is fewer than the event's vip and vvip seats "
                f"({vip + vvip}); change seats_vip or seats_vvip instead"
            )
        if normal > MAX_SEATS_PER_CLASS:
            raise BadRequest(f"a class has at most {MAX_SEATS_PER_CLASS} seats")
        if changes.get("seats_normal", normal) != normal:
            raise BadRequest("seats_normal and total_seats disagree: send one of them")
        changes["seats_normal"] = normal
        return changes


class EventRecord(BaseModel):
    """An event as cached: everything but the live availability."""

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
    max_tickets_per_buyer: int | None = None
    queue_enabled: bool = False
    onsale_at: datetime | None = None
    queue_admit_per_minute: int | None = None
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(from_attributes=True)

    def capacity(self) -> dict[str, int]:
        return {c: getattr(self, f"seats_{c}") for c in TICKET_CLASSES}

    def price(self, ticket_class: str) -> Decimal:
        value: Decimal = getattr(self, f"price_{ticket_class}")
        return value


class EventListPage(BaseModel):
    total: int
    events: list[EventRecord]


class EventPublic(GormFields):
    """An event as the original's clients read it (ORIGINAL_API.md: gorm's ``ID``,
    ``CreatedAt``, ``UpdatedAt``, ``DeletedAt``; ``total_seats``, ``available_seats``,
    ``organizer_id``; prices as JSON numbers) with the port's fields beside them."""

    organizer_id: int
    title: str
    description: str
    date: datetime
    location: str
    currency: str
    seats_per_row: int
    price_normal: Money
    price_vip: Money
    price_vvip: Money
    seats_normal: int
    seats_vip: int
    seats_vvip: int
    available_normal: int
    available_vip: int
    available_vvip: int
    max_tickets_per_buyer: int | None = None
    queue_enabled: bool = False
    onsale_at: datetime | None = None
    queue_admit_per_minute: int | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_seats(self) -> int:
        return self.seats_normal + self.seats_vip + self.seats_vvip

    @computed_field  # type: ignore[prop-decorator]
    @property
    def available_seats(self) -> int:
        return self.available_normal + self.available_vip + self.available_vvip

    @classmethod
    def build(cls, record: EventRecord, available: dict[str, int], **extra: Any) -> Any:
        data = record.model_dump()
        data.update({f"available_{c}": available[c] for c in TICKET_CLASSES}, **extra)
        return cls.model_validate(data)


class EventInternal(EventPublic):
    """What other services get from ``GET /internal/events/{id}``
    (read back as :class:`ticketing_common.internal.models.EventView`)."""


class OrganizerEvent(EventInternal):
    """An organizer's own event, with its sales."""

    sold_normal: int
    sold_vip: int
    sold_vvip: int


class EventSaved(BaseModel):
    message: str
    event: OrganizerEvent


class MapSeat(BaseModel):
    seat_id: str
    ticket_class: TicketClass
    row: int
    number: int
    status: SeatStatus


class SeatMap(BaseModel):
    event_id: int
    seats_per_row: int
    available: int
    held: int
    sold: int
    seats: list[MapSeat]


class QueuePlace(BaseModel):
    """A buyer's place in an event's waiting room."""

    model_config = ConfigDict(populate_by_name=True)

    event_id: int
    status: Literal["waiting", "queued", "admitted", "expired", "sold_out"]
    #: 1-based place among those not yet admitted; null once admitted
    position: int | None
    estimated_wait_s: float | None
    onsale_at: datetime | None
    joined_at: datetime | None
    admitted_at: datetime | None
    queue_pass: str | None = Field(
        None, serialization_alias="pass", description="send as X-Queue-Pass when booking"
    )
    pass_expires_at: datetime | None
    #: when to ask again
    poll_after_s: float


class QueueStats(BaseModel):
    event_id: int
    length: int
    admitted: int
    waiting: int
    admit_per_minute: int
    status: Literal["before_onsale", "open", "sold_out"]


# -- waiting lists (issue 19) -----------------------------------------------------------


class WaitlistJoin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ticket_class: TicketClass
    seat_count: int = Field(1, ge=1, le=100, description="seats wanted together")


WaitlistStatus = Literal["waiting", "offering", "offered", "booked", "lapsed", "left", "refused"]


class WaitlistEntryOut(BaseModel):
    """A buyer's entry on a class's waiting list."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: int
    ticket_class: TicketClass
    seat_count: int
    status: WaitlistStatus = Field(
        description="`waiting`; `offering` (seats came free: the offer is being made); "
        "`offered` (a pending booking, `booking_id`, holds the seats until "
        "`offer_expires_at`: pay it with `POST /api/payments/initialize`); `booked`; "
        "`lapsed` (the offer was not paid in time); `left`; `refused` (`reason`)"
    )
    #: 1-based place among the class's entries still waiting; null once offered or closed
    position: int | None = None
    booking_id: int | None = None
    offer_expires_at: datetime | None = None
    joined_at: datetime
    reason: str | None = None


class WaitlistClassStats(BaseModel):
    ticket_class: TicketClass
    waiting: int
    offered: int
    booked: int
    lapsed: int


class WaitlistStats(BaseModel):
    event_id: int
    classes: list[WaitlistClassStats]
