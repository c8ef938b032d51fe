"""auth_service settings: the shared ones plus this service's own."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from ticketing_common.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    service_name: str = "auth_service"
    port: int = Field(3001, alias="PORT")
    db_name: str = Field("auth_db", alias="DB_NAME")


@lru_cache
def get_settings() -> AuthSettings:
    return AuthSettings()
