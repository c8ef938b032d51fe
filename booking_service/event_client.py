"""event_service's internal API as booking_service uses it: event lookup and seat holds."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cachetools import TTLCache

from booking_service.errors import SeatsUnavailable, UnknownSeats
from ticketing_common.errors import BadRequest, NotFound, ServiceUnavailable, UpstreamError
from ticketing_common.http_client import InternalClient

logger = logging.getLogger("booking_service.events")

TICKET_CLASSES = ("normal", "vip", "vvip")


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EventInfo:
    """The parts of an event a booking needs: owner, prices, layout, date."""

    id: int
    organizer_id: int
    currency: str | None
    date: datetime | None
    seats_per_row: int
    prices: dict[str, Decimal]
    capacity: dict[str, int]
    updated_at: datetime | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> EventInfo:
        try:
            return cls(
                id=int(body["id"]),
                organizer_id=int(body["organizer_id"]),
                currency=body.get("currency"),
                date=_parse_time(body["date"]) if body.get("date") else None,
                seats_per_row=int(body.get("seats_per_row") or 10),
                prices={
                    c: Decimal(str(body[f"price_{c}"]))
                    for c in TICKET_CLASSES
                    if body.get(f"price_{c}") is not None
                },
                capacity={c: int(body[f"seats_{c}"]) for c in TICKET_CLASSES},
                updated_at=_parse_time(body["updated_at"]) if body.get("updated_at") else None,
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise UpstreamError(f"event_service sent an unreadable event: {exc}") from exc

    def has_seat(self, ticket_class: str, row: int, number: int) -> bool:
        """Seats of a class fill rows of ``seats_per_row`` from row 1, seat 1."""
        if number > self.seats_per_row or ticket_class not in self.prices:
            return False
        return (row - 1) * self.seats_per_row + number <= self.capacity[ticket_class]

    def price_of(self, ticket_class: str) -> Decimal:
        try:
            return self.prices[ticket_class]
        except KeyError:
            raise UpstreamError(f"event {self.id} has no {ticket_class} price") from None


@dataclass(frozen=True, slots=True)
class HeldSeat:
    seat_id: str
    ticket_class: str
    row: int
    number: int


@dataclass(frozen=True, slots=True)
class Hold:
    token: str
    expires_at: datetime
    seats: list[HeldSeat]
    #: the event version event_service granted the hold against
    event_updated_at: datetime | None = None


#: events a process has read lately, by id (see ``BOOKING_EVENT_CACHE_SECONDS``)
EventCache = TTLCache[int, EventInfo]
EVENT_CACHE_SIZE = 4096


class EventClient:
    def __init__(
        self, http: InternalClient, base_url: str, cache: EventCache | None = None
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._cache = cache

    def _event_url(self, event_id: int) -> str:
        return f"{self._base}/internal/events/{event_id}"

    async def get_event(self, event_id: int, *, fresh: bool = False) -> EventInfo:
        """The event, from this process's short-lived copy unless ``fresh`` or unknown."""
        if self._cache is not None and not fresh:
            cached = self._cache.get(event_id)
            if cached is not None:
                return cached
        body = await self._http.get_json(self._event_url(event_id), what="event")
        event = EventInfo.from_body(body)
        if self._cache is not None:
            self._cache[event_id] = event
        return event

    async def hold_seats(
        self,
        event_id: int,
        token: str,
        *,
        seat_ids: list[str] | None = None,
        ticket_class: str | None = None,
        count: int | None = None,
        ttl_seconds: int,
    ) -> Hold:
        """Hold all the seats or none. Re-sending the same token and request is safe."""
        body: dict[str, Any] = {"token": token, "ttl_seconds": ttl_seconds}
        if seat_ids is not None:
            body["seat_ids"] = seat_ids
        else:
            body["ticket_class"] = ticket_class
            body["count"] = count
        response = await self._http.request(
            "POST", f"{self._event_url(event_id)}/holds", json=body, idempotent=True
        )
        if response.status_code == 201 or response.status_code == 200:
            return self._parse_hold(response.json())
        error = _error_of(response.json() if _is_json(response) else {})
        if response.status_code == 409:
            raise SeatsUnavailable(details=error.get("details"))
        if response.status_code == 404:
            raise NotFound("event not found")
        if response.status_code == 400:
            if error.get("details") and "seat_ids" in error["details"]:
                raise UnknownSeats(error.get("error"), details=error["details"])
            raise BadRequest(error.get("error") or "the seats could not be held")
        raise UpstreamError(f"seat hold failed with status {response.status_code}")

    async def release_hold(self, event_id: int, token: str) -> None:
        """Give back what ``token`` holds; raises only when event_service can't be reached."""
        response = await self._http.request("DELETE", f"{self._event_url(event_id)}/holds/{token}")
        if response.status_code not in (200, 204, 404):
            raise UpstreamError(f"hold release failed with status {response.status_code}")

    async def release_hold_quietly(self, event_id: int, token: str) -> bool:
        """Best effort: the booking's outbox message and the hold's TTL release it anyway."""
        try:
            await self.release_hold(event_id, token)
        except (ServiceUnavailable, UpstreamError) as exc:
            logger.warning(
                "hold release deferred", extra={"event_id": event_id, "error": exc.message}
            )
            return False
        return True

    async def confirm_hold(self, event_id: int, token: str, booking_id: int) -> bool:
        """Make the held seats sold. False when the token no longer holds them."""
        response = await self._http.request(
            "POST",
            f"{self._event_url(event_id)}/holds/{token}/confirm",
            json={"booking_id": booking_id},
            idempotent=True,
        )
        if response.status_code == 200:
            return True
        if response.status_code in (404, 409):
            return False
        raise UpstreamError(f"hold confirm failed with status {response.status_code}")

    @staticmethod
    def _parse_hold(body: dict[str, Any]) -> Hold:
        try:
            return Hold(
                token=str(body["token"]),
                expires_at=_parse_time(body["expires_at"]),
                seats=[
                    HeldSeat(
                        seat_id=str(seat["seat_id"]),
                        ticket_class=str(seat["ticket_class"]),
                        row=int(seat["row"]),
                        number=int(seat["number"]),
                    )
                    for seat in body["seats"]
                ],
                event_updated_at=(
                    _parse_time(body["event_updated_at"]) if body.get("event_updated_at") else None
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"event_service sent an unreadable hold: {exc}") from exc


def _is_json(response: Any) -> bool:
    return "json" in response.headers.get("content-type", "")


def _error_of(body: Any) -> dict[str, Any]:
    return body if isinstance(body, dict) else {}


def event_client_of(app: Any) -> EventClient:
    """The event_service client over the app's pooled internal HTTP client and event copies."""
    cache: EventCache | None = getattr(app.state, "event_cache", None)
    ttl = app.state.settings.event_cache_seconds
    if cache is None and ttl > 0:
        cache = app.state.event_cache = TTLCache(maxsize=EVENT_CACHE_SIZE, ttl=ttl)
    return EventClient(app.state.http, app.state.settings.event_service_url, cache)
