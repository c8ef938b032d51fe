"""One typed client per service's internal API, all over the one :class:`InternalClient`."""

from __future__ import annotations

from ticketing_common.http_client import InternalClient
from ticketing_common.internal.models import (
    BookingView,
    ConfirmOut,
    ConfirmRequest,
    EventView,
    HoldGranted,
    HoldRequest,
    LiveHolds,
    UserView,
    WaitlistOffer,
    WaitlistOfferRequest,
)
from ticketing_common.settings import ServiceSettings


class EventsApi:
    """event_service: events and the seat holds it decides."""

    def __init__(self, http: InternalClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + "/internal/events"

    @classmethod
    def of(cls, http: InternalClient, settings: ServiceSettings) -> EventsApi:
        return cls(http, settings.event_service_url)

    async def event(self, event_id: int) -> EventView:
        return await self._http.call("GET", f"{self._base}/{event_id}", EventView)

    async def hold(self, event_id: int, request: HoldRequest) -> HoldGranted:
        """All seats or none. The same token and request again returns the same hold."""
        return await self._http.call(
            "POST", f"{self._base}/{event_id}/holds", HoldGranted, body=request, idempotent=True
        )

    async def release(self, event_id: int, token: str) -> None:
        """Give back what ``token`` holds (idempotent: nothing held is fine)."""
        await self._http.send("DELETE", f"{self._base}/{event_id}/holds/{token}")

    async def confirm(self, event_id: int, token: str, booking_id: int) -> ConfirmOut:
        """Make the token's held seats sold to the booking; idempotent for the same token.

        Raises :class:`~ticketing_common.internal.errors.HoldExpired` (or
        ``BookingReleased``) when the token no longer holds them.
        """
        return await self._http.call(
            "POST",
            f"{self._base}/{event_id}/holds/{token}/confirm",
            ConfirmOut,
            body=ConfirmRequest(booking_id=booking_id),
            idempotent=True,
        )


class BookingsApi:
    """booking_service: bookings, and the live holds a seat-gate rebuild restores."""

    def __init__(self, http: InternalClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + "/internal/bookings"

    @classmethod
    def of(cls, http: InternalClient, settings: ServiceSettings) -> BookingsApi:
        return cls(http, settings.booking_service_url)

    async def booking(self, booking_id: int) -> BookingView:
        return await self._http.call("GET", f"{self._base}/{booking_id}", BookingView)

    async def live_holds(self, event_id: int) -> LiveHolds:
        return await self._http.call("GET", f"{self._base}/holds/{event_id}", LiveHolds)

    async def offer(self, request: WaitlistOfferRequest) -> WaitlistOffer:
        """A pending booking for a waiting list's entry; idempotent by ``request.key``."""
        return await self._http.call(
            "POST", f"{self._base}/offers", WaitlistOffer, body=request, idempotent=True
        )


class UsersApi:
    """auth_service: user lookups."""

    def __init__(self, http: InternalClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + "/internal/users"

    @classmethod
    def of(cls, http: InternalClient, settings: ServiceSettings) -> UsersApi:
        return cls(http, settings.auth_service_url)

    async def user(self, user_id: int) -> UserView:
        return await self._http.call("GET", f"{self._base}/{user_id}", UserView)
