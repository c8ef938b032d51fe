"""Service settings read from the environment, with the original system's variable names."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789"  # noqa: S105 - local default
DEV_JWT_REFRESH_SECRET = "dev-only-refresh-secret-change-me-0123456789"  # noqa: S105
DEV_SERVICE_TOKEN = "dev-only-service-token-change-me"  # noqa: S105
DEV_WEBHOOK_SECRET = "dev-only-webhook-secret-change-me"  # noqa: S105
DEV_TICKET_SIGNING_SECRET = "dev-only-ticket-signing-secret"  # noqa: S105

_DEV_SECRETS = {
    "jwt_secret": DEV_JWT_SECRET,
    "jwt_refresh_secret": DEV_JWT_REFRESH_SECRET,
    "service_token": DEV_SERVICE_TOKEN,
    "payment_webhook_secret": DEV_WEBHOOK_SECRET,
    "ticket_signing_secret": DEV_TICKET_SIGNING_SECRET,
}

#: the shortest secret production accepts: 32 characters, the 256 bits of ``openssl rand
#: -hex 32`` (hex) or more (base64); HS256 keys shorter than the hash are guessable offline
MIN_SECRET_LENGTH = 32
#: text that marks a placeholder rather than a generated secret (compared case-insensitively)
_PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "dev-only", "example", "replace")
#: the shortest password production accepts for an account seeded from settings (the admin)
MIN_SEEDED_PASSWORD_LENGTH = 12
_COMMON_PASSWORDS = frozenset(
    {"admin", "administrator", "password", "passw0rd", "letmein", "welcome", "qwerty", "secret"}
)


def secret_problem(name: str, value: str) -> str | None:
    """Why ``value`` may not be the production ``name`` (an env variable name), or None."""
    if not value:
        return f"{name} is not set"
    if value in _DEV_SECRETS.values():
        return f"{name} is a development default"
    if any(marker in value.lower() for marker in _PLACEHOLDER_MARKERS):
        return f"{name} looks like a placeholder, not a generated secret"
    if len(value) < MIN_SECRET_LENGTH:
        return f"{name} is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def seeded_password_problem(name: str, value: str, *, dev_default: str) -> str | None:
    """Why ``value`` may not be the production password ``name`` of a seeded account.

    The admin account is seeded from settings and reachable from the internet: its
    password must not be the development default, a common word, or short.
    """
    if value == dev_default:
        return f"{name} is the development default"
    stripped = "".join(c for c in value.lower() if c.isalpha())
    if value.lower() in _COMMON_PASSWORDS or stripped in _COMMON_PASSWORDS:
        return f"{name} is a common password"
    if len(value) < MIN_SEEDED_PASSWORD_LENGTH:
        return f"{name} is shorter than {MIN_SEEDED_PASSWORD_LENGTH} characters"
    if not (any(c.isalpha() for c in value) and any(c.isdigit() for c in value)):
        return f"{name} needs letters and digits"
    return None


class ServiceSettings(BaseSettings):
    """Settings every service shares; each service subclasses it with its own defaults.

    Local defaults are safe for a developer machine. With ``APP_ENV=production`` every
    problem :meth:`production_problems` finds (a secret left at its development value, a
    weak or shared secret, ...) is a start-up error, never a silent default.
    """

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, populate_by_name=True
    )

    app_env: Literal["development", "test", "production"] = Field("development", alias="APP_ENV")
    #: a production-mode system that is a staging system on purpose: it may take test
    #: payments (the simulated provider), while every production rule on secrets holds
    staging: bool = Field(False, alias="STAGING")
    service_name: str = "service"
    host: str = Field("127.0.0.1", alias="HOST")
    port: int = Field(3000, alias="PORT")
    log_level: str = Field("INFO", alias="LOG_LEVEL")

    db_host: str = Field("127.0.0.1", alias="DB_HOST")
    db_port: int = Field(5432, alias="DB_PORT")
    db_user: str = Field("ticketing", alias="DB_USER")
    db_password: str = Field("ticketing", alias="DB_PASSWORD")
    db_name: str = Field("postgres", alias="DB_NAME")
    db_pool_size: int = Field(10, alias="DB_POOL_SIZE")
    db_max_overflow: int = Field(10, alias="DB_MAX_OVERFLOW")

    redis_addr: str = Field("127.0.0.1:6379", alias="REDIS_ADDR")
    redis_db: int = Field(0, alias="REDIS_DB")
    redis_cluster: bool = Field(False, alias="REDIS_CLUSTER")

    rabbitmq_host: str = Field("127.0.0.1", alias="RABBITMQ_HOST")
    rabbitmq_port: int = Field(5672, alias="RABBITMQ_PORT")
    rabbitmq_user: str = Field("guest", alias="RABBITMQ_USER")
    rabbitmq_pass: str = Field("guest", alias="RABBITMQ_PASS")
    rabbitmq_vhost: str = Field("/", alias="RABBITMQ_VHOST")
    rabbitmq_exchange: str = Field("ticketing.events", alias="RABBITMQ_EXCHANGE")
    rabbitmq_quorum_queues: bool = Field(False, alias="RABBITMQ_QUORUM_QUEUES")

    jwt_secret: str = Field(DEV_JWT_SECRET, alias="JWT_SECRET")
    jwt_refresh_secret: str = Field(DEV_JWT_REFRESH_SECRET, alias="JWT_REFRESH_SECRET")
    access_token_ttl_seconds: int = Field(15 * 60, alias="ACCESS_TOKEN_TTL_SECONDS")
    refresh_token_ttl_seconds: int = Field(7 * 24 * 3600, alias="REFRESH_TOKEN_TTL_SECONDS")

    service_token: str = Field(DEV_SERVICE_TOKEN, alias="SERVICE_TOKEN")
    payment_webhook_secret: str = Field(DEV_WEBHOOK_SECRET, alias="PAYMENT_WEBHOOK_SECRET")
    ticket_signing_secret: str = Field(DEV_TICKET_SIGNING_SECRET, alias="TICKET_SIGNING_SECRET")

    auth_service_url: str = Field("http://127.0.0.1:3001", alias="AUTH_SERVICE_URL")
    booking_service_url: str = Field("http://127.0.0.1:3002", alias="BOOKING_SERVICE_URL")
    event_service_url: str = Field("http://127.0.0.1:3003", alias="EVENT_SERVICE_URL")
    payment_service_url: str = Field("http://127.0.0.1:3004", alias="PAYMENT_SERVICE_URL")
    public_base_url: str = Field("http://127.0.0.1:8080", alias="PUBLIC_BASE_URL")

    internal_http_timeout_seconds: float = Field(5.0, alias="INTERNAL_HTTP_TIMEOUT_SECONDS")
    internal_http_retries: int = Field(2, alias="INTERNAL_HTTP_RETRIES")
    #: connections per process to the other services; httpcore scans its whole pool on
    #: every request, so a pool far above the calls in flight costs CPU, not throughput
    internal_http_max_connections: int = Field(
        16, alias="INTERNAL_HTTP_MAX_CONNECTIONS", ge=1, le=1000
    )

    #: requests one process runs at once; the rest queue for a turn (see
    #: ticketing_common/admission.py). 0: no limit.
    max_requests_in_flight: int = Field(32, alias="MAX_REQUESTS_IN_FLIGHT", ge=0, le=10_000)

    hold_ttl_seconds: int = Field(900, alias="HOLD_TTL_SECONDS")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> ServiceSettings:
        if self.app_env == "production":
            problems = self.production_problems()
            if problems:
                raise ValueError("production mode refuses these settings: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """What makes these settings unsafe for production (empty: nothing).

        A service's settings extend it (``problems = super().production_problems()``) with
        their own rules, e.g. payment_service refuses its simulated provider unless
        ``STAGING`` says so; every problem is reported at once, in one start-up error.
        """
        secrets = {name: getattr(self, name) for name in _DEV_SECRETS}
        problems = [
            problem
            for name, value in secrets.items()
            if (problem := secret_problem(name.upper(), value)) is not None
        ]
        owners: dict[str, list[str]] = {}
        for name, value in secrets.items():
            owners.setdefault(value, []).append(name.upper())
        problems += [
            " and ".join(names) + " must differ (one secret per purpose)"
            for names in owners.values()
            if len(names) > 1
        ]
        return problems

    @cached_property
    def database_url(self) -> str:
        return (
            f"postgresql+asyncpg://{self.db_user}:{self.db_password}"
            f"@{self.db_host}:{self.db_port}/{self.db_name}"
        )

    @cached_property
    def redis_url(self) -> str:
        return f"redis://{self.redis_addr}/{self.redis_db}"

    @cached_property
    def rabbitmq_url(self) -> str:
        vhost = "%2F" if self.rabbitmq_vhost == "/" else self.rabbitmq_vhost
        return (
            f"amqp://{self.rabbitmq_user}:{self.rabbitmq_pass}"
            f"@{self.rabbitmq_host}:{self.rabbitmq_port}/{vhost}"
        )
