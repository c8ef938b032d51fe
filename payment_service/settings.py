"""payment_service settings: the shared ones plus this service's own."""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import Literal

from pydantic import Field, model_validator

from ticketing_common.settings import ServiceSettings

ProviderName = Literal["simulated", "chapa"]
ForcedOutcome = Literal["success", "failed"]


class PaymentSettings(ServiceSettings):
    service_name: str = "payment_service"
    port: int = Field(3004, alias="PORT")
    db_name: str = Field("payment_db", alias="DB_NAME")

    payment_provider: ProviderName = Field("simulated", alias="PAYMENT_PROVIDER")
    #: The front end's origin (as the original's ``FRONTEND_URL``). Read here until
    #: ticketing_common's ServiceSettings carries it for every service.
    frontend_url: str = Field("http://localhost:3000", alias="FRONTEND_URL")
    #: Where the buyer's browser goes after the provider's checkout, with ``tx_ref=`` added
    #: to its query. Empty: the original's ``FRONTEND_URL/payment/success``.
    payment_return_url: str = Field("", alias="PAYMENT_RETURN_URL")
    #: Where the provider posts the signed callback. Empty: this service's own internal URL.
    payment_callback_url: str = Field("", alias="PAYMENT_CALLBACK_URL")
    payment_callback_max_age_seconds: int = Field(300, alias="PAYMENT_CALLBACK_MAX_AGE_SECONDS")
    #: Pending payments older than this are asked about by the reconciler.
    payment_reconcile_after_seconds: float = Field(30.0, alias="PAYMENT_RECONCILE_AFTER_SECONDS")
    payment_reconcile_interval_seconds: float = Field(
        15.0, alias="PAYMENT_RECONCILE_INTERVAL_SECONDS"
    )
    payment_reconcile_window_hours: int = Field(24, alias="PAYMENT_RECONCILE_WINDOW_HOURS")
    payment_reconcile_batch: int = Field(50, alias="PAYMENT_RECONCILE_BATCH")

    chapa_secret_key: str = Field("", alias="CHAPA_SECRET_KEY")
    chapa_base_url: str = Field("https://api.chapa.co", alias="CHAPA_BASE_URL")
    chapa_timeout_seconds: float = Field(10.0, alias="CHAPA_TIMEOUT_SECONDS")
    chapa_retries: int = Field(2, alias="CHAPA_RETRIES")

    #: Tests and demos: the simulated checkout records this outcome whichever button is used.
    simulated_force_outcome: ForcedOutcome | None = Field(None, alias="SIMULATED_FORCE_OUTCOME")

    @model_validator(mode="after")
    def _chapa_needs_a_key(self) -> PaymentSettings:
        if self.payment_provider == "chapa" and not self.chapa_secret_key:
            raise ValueError("PAYMENT_PROVIDER=chapa needs CHAPA_SECRET_KEY")
        return self

    def production_problems(self) -> list[str]:
        """The shared rules, plus: production takes real payments. The simulated provider
        confirms a ticket for whoever presses Pay on its page, so a production system runs
        it only when ``STAGING`` says it is a staging system on purpose."""
        problems = super().production_problems()
        if self.payment_provider == "simulated" and not self.staging:
            problems.append(
                "PAYMENT_PROVIDER=simulated gives tickets away without payment: set "
                "PAYMENT_PROVIDER=chapa, or STAGING=true on a staging system"
            )
        if self.simulated_force_outcome is not None:
            problems.append("SIMULATED_FORCE_OUTCOME is for tests, not production")
        return problems

    @cached_property
    def callback_url(self) -> str:
        return self.payment_callback_url or f"{self.payment_service_url}/api/payments/callback"

    @cached_property
    def return_url(self) -> str:
        """Where the provider returns the buyer (before ``tx_ref`` is added)."""
        return self.payment_return_url or f"{self.frontend_url.rstrip('/')}/payment/success"

    @cached_property
    def checkout_base_url(self) -> str:
        """Public base of the simulated provider's hosted pages (served through the gateway)."""
        return f"{self.public_base_url}/api/payments/checkout"


@lru_cache
def get_settings() -> PaymentSettings:
    return PaymentSettings()
