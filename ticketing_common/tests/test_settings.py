"""Production refuses settings that would be unsafe: weak, shared or placeholder secrets, and
whatever a service's own settings add to the list (its hook)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from pydantic import ValidationError

from ticketing_common.settings import (
    DEV_JWT_SECRET,
    ServiceSettings,
    seeded_password_problem,
)

SECRET_NAMES = (
    "JWT_SECRET",
    "JWT_REFRESH_SECRET",
    "SERVICE_TOKEN",
    "PAYMENT_WEBHOOK_SECRET",
    "TICKET_SIGNING_SECRET",
)


def generated_secrets() -> dict[str, Any]:
    """What an operator following .env.example sets: `openssl rand -hex 32` for each."""
    return {name: secrets.token_hex(32) for name in SECRET_NAMES}


def production(**overrides: Any) -> ServiceSettings:
    return ServiceSettings(APP_ENV="production", **{**generated_secrets(), **overrides})


def test_production_starts_with_generated_secrets() -> None:
    settings = production()

    assert settings.app_env == "production"
    assert settings.staging is False


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_production_refuses_a_short_secret(name: str) -> None:
    with pytest.raises(ValidationError, match=f"{name} is shorter than 32 characters"):
        production(**{name: "a"})


def test_production_refuses_an_empty_webhook_secret() -> None:
    with pytest.raises(ValidationError, match="PAYMENT_WEBHOOK_SECRET is not set"):
        production(PAYMENT_WEBHOOK_SECRET="")


def test_production_refuses_the_same_secret_for_access_and_refresh_tokens() -> None:
    shared = secrets.token_hex(32)

    with pytest.raises(ValidationError, match="JWT_SECRET and JWT_REFRESH_SECRET must differ"):
        production(JWT_SECRET=shared, JWT_REFRESH_SECRET=shared)


@pytest.mark.parametrize(
    "value",
    [
        DEV_JWT_SECRET,
        "dev-only-jwt-secret-change-me-0123456789-but-longer",
        "please-CHANGE-ME-before-going-live-0123456789",
        "replace-with-the-output-of-openssl-rand-hex-32",
    ],
)
def test_production_refuses_development_defaults_and_placeholders(value: str) -> None:
    with pytest.raises(
        ValidationError, match=r"JWT_SECRET (is a development default|looks like a placeholder)"
    ):
        production(JWT_SECRET=value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        ServiceSettings(APP_ENV="production", JWT_SECRET="a", PAYMENT_WEBHOOK_SECRET="")

    message = str(refused.value)
    for expected in (
        "JWT_SECRET is shorter",
        "JWT_REFRESH_SECRET is a development default",
        "SERVICE_TOKEN is a development default",
        "PAYMENT_WEBHOOK_SECRET is not set",
        "TICKET_SIGNING_SECRET is a development default",
    ):
        assert expected in message


def test_development_and_test_keep_their_local_defaults() -> None:
    assert ServiceSettings(APP_ENV="development").jwt_secret == DEV_JWT_SECRET
    assert ServiceSettings(APP_ENV="test", JWT_SECRET="a").jwt_secret == "a"


class _ProviderSettings(ServiceSettings):
    """A service with a rule of its own, as payment_service has for its provider."""

    payment_provider: str = "simulated"

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if self.payment_provider == "simulated" and not self.staging:
            problems.append("PAYMENT_PROVIDER=simulated is not for production")
        return problems


def test_a_service_adds_its_own_production_rules_through_the_hook() -> None:
    with pytest.raises(ValidationError, match="PAYMENT_PROVIDER=simulated is not for production"):
        _ProviderSettings(APP_ENV="production", **generated_secrets())
    with pytest.raises(ValidationError, match=r"JWT_SECRET is shorter.*PAYMENT_PROVIDER=simulated"):
        _ProviderSettings(APP_ENV="production", **{**generated_secrets(), "JWT_SECRET": "a"})


def test_staging_is_a_production_system_that_says_so_on_purpose() -> None:
    staging = _ProviderSettings(APP_ENV="production", STAGING="true", **generated_secrets())

    assert staging.staging is True
    with pytest.raises(ValidationError, match="JWT_SECRET is shorter"):
        _ProviderSettings(
            APP_ENV="production", STAGING=True, **{**generated_secrets(), "JWT_SECRET": "a"}
        )


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Admin-Password-1", "the development default"),
        ("admin", "a common password"),
        ("Password1", "a common password"),
        ("Adm1n-pw", "shorter than 12 characters"),
        ("correct-horse-battery", "needs letters and digits"),
    ],
)
def test_a_seeded_admin_password_must_not_be_weak(password: str, problem: str) -> None:
    found = seeded_password_problem("ADMIN_PASSWORD", password, dev_default="Admin-Password-1")

    assert found is not None
    assert found.startswith("ADMIN_PASSWORD ")
    assert problem in found


def test_a_strong_seeded_admin_password_is_accepted() -> None:
    found = seeded_password_problem(
        "ADMIN_PASSWORD", "vivid-Otter-42-lantern", dev_default="Admin-Password-1"
    )

    assert found is None
