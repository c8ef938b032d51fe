"""event_service settings: the shared ones plus this service's own."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from ticketing_common.settings import ServiceSettings


class EventSettings(ServiceSettings):
    service_name: str = "event_service"
    port: int = Field(3003, alias="PORT")
    db_name: str = Field("event_db", alias="DB_NAME")


@lru_cache
def get_settings() -> EventSettings:
    return EventSettings()
