"""Users, events and bookings as this service needs them, read from their owners'
internal APIs (the pooled :class:`InternalClient` brings timeouts and bounded retries)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ticketing_common.errors import UpstreamError
from ticketing_common.http_client import InternalClient
from ticketing_common.settings import ServiceSettings


class _Upstream(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class UserDetails(_Upstream):
    id: int
    email: str
    role: str


class EventDetails(_Upstream):
    id: int
    title: str
    date: datetime
    location: str
    organizer_id: int


class BookingSeatDetails(_Upstream):
    seat_id: str
    ticket_class: str
    row: int
    number: int
    price: Decimal


class BookingDetails(_Upstream):
    id: int
    user_id: int
    event_id: int
    status: str
    total_amount: Decimal
    currency: str
    seats: list[BookingSeatDetails]


_M = TypeVar("_M", bound=_Upstream)


def _parse(model: type[_M], body: Any, what: str) -> _M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise UpstreamError(f"{what} lookup returned an unexpected body") from exc


async def fetch_user(http: InternalClient, settings: ServiceSettings, user_id: int) -> UserDetails:
    url = f"{settings.auth_service_url}/internal/users/{user_id}"
    return _parse(UserDetails, await http.get_json(url, what="user"), "user")


async def fetch_event(
    http: InternalClient, settings: ServiceSettings, event_id: int
) -> EventDetails:
    url = f"{settings.event_service_url}/internal/events/{event_id}"
    return _parse(EventDetails, await http.get_json(url, what="event"), "event")


async def fetch_booking(
    http: InternalClient, settings: ServiceSettings, booking_id: int
) -> BookingDetails:
    url = f"{settings.booking_service_url}/internal/bookings/{booking_id}"
    return _parse(BookingDetails, await http.get_json(url, what="booking"), "booking")
