"""booking_service settings: the shared ones plus this service's own."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from ticketing_common.settings import ServiceSettings


class BookingSettings(ServiceSettings):
    service_name: str = "booking_service"
    port: int = Field(3002, alias="PORT")
    db_name: str = Field("booking_db", alias="DB_NAME")

    currency: str = Field("ETB", alias="CURRENCY", min_length=3, max_length=3)
    max_seats_per_booking: int = Field(10, alias="MAX_SEATS_PER_BOOKING", ge=1, le=100)
    #: seats one account may hold (in pending bookings) of one event at once, and pending
    #: bookings it may have of one event: nobody hoards an event by renewing holds
    max_held_seats_per_buyer: int = Field(10, alias="MAX_HELD_SEATS_PER_BUYER", ge=1, le=1_000_000)
    max_pending_bookings_per_buyer: int = Field(
        3, alias="MAX_PENDING_BOOKINGS_PER_BUYER", ge=1, le=1_000_000
    )
    idempotency_key_ttl_seconds: int = Field(24 * 3600, alias="IDEMPOTENCY_KEY_TTL_SECONDS", ge=1)
    expiry_interval_seconds: float = Field(1.0, alias="BOOKING_EXPIRY_INTERVAL_SECONDS", gt=0)
    expiry_batch_size: int = Field(100, alias="BOOKING_EXPIRY_BATCH_SIZE", ge=1, le=1000)


@lru_cache
def get_settings() -> BookingSettings:
    return BookingSettings()
