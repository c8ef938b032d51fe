"""Settings refuse configurations that would fail later, or silently in production."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from payment_service.settings import PaymentSettings


def test_the_simulated_provider_is_the_default_and_chapa_is_never_the_default_url() -> None:
    settings = PaymentSettings()

    assert settings.payment_provider == "simulated"
    assert settings.chapa_base_url == "https://api.chapa.co"
    assert settings.callback_url == f"{settings.payment_service_url}/api/payments/callback"


def test_chapa_without_a_secret_key_is_a_startup_error() -> None:
    with pytest.raises(ValidationError, match="CHAPA_SECRET_KEY"):
        PaymentSettings(PAYMENT_PROVIDER="chapa", CHAPA_SECRET_KEY="")


def test_a_forced_outcome_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="SIMULATED_FORCE_OUTCOME"):
        PaymentSettings(
            APP_ENV="production",
            JWT_SECRET="j" * 40,
            JWT_REFRESH_SECRET="r" * 40,
            SERVICE_TOKEN="s" * 40,
            PAYMENT_WEBHOOK_SECRET="w" * 40,
            TICKET_SIGNING_SECRET="t" * 40,
            SIMULATED_FORCE_OUTCOME="success",
        )


def _production(**overrides: str) -> PaymentSettings:
    secrets: dict[str, Any] = {
        "JWT_SECRET": "j" * 40,
        "JWT_REFRESH_SECRET": "r" * 40,
        "SERVICE_TOKEN": "s" * 40,
        "PAYMENT_WEBHOOK_SECRET": "w" * 40,
        "TICKET_SIGNING_SECRET": "t" * 40,
    }
    return PaymentSettings(APP_ENV="production", **{**secrets, **overrides})


def test_production_refuses_the_simulated_provider_that_gives_tickets_away() -> None:
    with pytest.raises(ValidationError, match="PAYMENT_PROVIDER=simulated gives tickets away"):
        _production()


def test_a_staging_system_in_production_mode_may_take_test_payments() -> None:
    assert _production(STAGING="true").payment_provider == "simulated"


def test_production_with_chapa_and_real_secrets_starts() -> None:
    settings = _production(PAYMENT_PROVIDER="chapa", CHAPA_SECRET_KEY="CHASECK-" + "k" * 32)

    assert settings.payment_provider == "chapa"
