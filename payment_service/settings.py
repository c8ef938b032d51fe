"""payment_service settings: the shared ones plus this service's own."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from ticketing_common.settings import ServiceSettings


class PaymentSettings(ServiceSettings):
    service_name: str = "payment_service"
    port: int = Field(3004, alias="PORT")
    db_name: str = Field("payment_db", alias="DB_NAME")


@lru_cache
def get_settings() -> PaymentSettings:
    return PaymentSettings()
