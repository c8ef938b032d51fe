"""notification_service settings: the shared ones plus this service's own."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from ticketing_common.settings import ServiceSettings


class NotificationSettings(ServiceSettings):
    service_name: str = "notification_service"
    port: int = Field(3005, alias="PORT")
    db_name: str = Field("notification_db", alias="DB_NAME")


@lru_cache
def get_settings() -> NotificationSettings:
    return NotificationSettings()
