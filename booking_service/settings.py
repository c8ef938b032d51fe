"""booking_service settings: the shared ones plus this service's own."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from ticketing_common.settings import ServiceSettings


class BookingSettings(ServiceSettings):
    service_name: str = "booking_service"
    port: int = Field(3002, alias="PORT")
    db_name: str = Field("booking_db", alias="DB_NAME")


@lru_cache
def get_settings() -> BookingSettings:
    return BookingSettings()
