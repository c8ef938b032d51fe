"""auth_service settings: the shared ones plus this service's own."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator

from ticketing_common.settings import ServiceSettings

DEV_ADMIN_PASSWORD = "Admin-Password-1"  # noqa: S105 - local default, refused in production


class AuthSettings(ServiceSettings):
    service_name: str = "auth_service"
    port: int = Field(3001, alias="PORT")
    db_name: str = Field("auth_db", alias="DB_NAME")

    admin_email: str = Field("admin@example.com", alias="ADMIN_EMAIL")
    admin_password: str = Field(DEV_ADMIN_PASSWORD, alias="ADMIN_PASSWORD")

    # argon2id: RFC 9106's "low memory" profile by default. Tests may lower the cost; the
    # event-loop benchmark uses these production values.
    argon2_time_cost: int = Field(3, alias="ARGON2_TIME_COST", ge=1)
    argon2_memory_cost: int = Field(65536, alias="ARGON2_MEMORY_COST", ge=8)
    argon2_parallelism: int = Field(4, alias="ARGON2_PARALLELISM", ge=1)
    #: threads hashing passwords at once; each argon2 hash holds ``memory_cost`` KiB
    password_hash_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 2, alias="PASSWORD_HASH_WORKERS", ge=1
    )

    upload_dir: Path = Field(Path(".run/uploads"), alias="UPLOAD_DIR")
    document_max_bytes: int = Field(5 * 1024 * 1024, alias="DOCUMENT_MAX_BYTES", ge=1)

    verification_code_ttl_seconds: int = Field(24 * 3600, alias="VERIFICATION_CODE_TTL_SECONDS")
    reset_code_ttl_seconds: int = Field(15 * 60, alias="RESET_CODE_TTL_SECONDS")
    code_max_attempts: int = Field(5, alias="CODE_MAX_ATTEMPTS", ge=1)
    #: verification / reset emails per address per ``code_email_window_seconds``
    code_emails_per_window: int = Field(3, alias="CODE_EMAILS_PER_WINDOW", ge=1)
    code_email_window_seconds: int = Field(15 * 60, alias="CODE_EMAIL_WINDOW_SECONDS")

    #: failed logins for one account before it is throttled, and for how long
    login_max_failures: int = Field(5, alias="LOGIN_MAX_FAILURES", ge=1)
    login_lockout_seconds: int = Field(15 * 60, alias="LOGIN_LOCKOUT_SECONDS", ge=1)

    @model_validator(mode="after")
    def _refuse_dev_admin_password_in_production(self) -> AuthSettings:
        if self.app_env == "production" and self.admin_password == DEV_ADMIN_PASSWORD:
            raise ValueError("production mode needs a real ADMIN_PASSWORD")
        return self


@lru_cache
def get_settings() -> AuthSettings:
    return AuthSettings()
