"""auth_service settings: the shared ones plus this service's own."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from ticketing_common.settings import ServiceSettings, seeded_password_problem

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
    #: hashes that may wait for a free worker (per process); beyond them a login, sign-up or
    #: password change is answered 503 with Retry-After at once. Unset: 4 per worker, so a
    #: request waits at most about four hash times for its turn.
    password_hash_queue: int | None = Field(None, alias="PASSWORD_HASH_QUEUE", ge=0)

    upload_dir: Path = Field(Path(".run/uploads"), alias="UPLOAD_DIR")
    document_max_bytes: int = Field(5 * 1024 * 1024, alias="DOCUMENT_MAX_BYTES", ge=1)

    #: The front end's origin (the original's ``FRONTEND_URL``): the verification email
    #: links to its ``/verify-email`` page, which posts the link's token to
    #: ``/api/auth/verify-email``. Read here until ServiceSettings carries it for every service.
    frontend_url: str = Field("http://localhost:3000", alias="FRONTEND_URL")

    verification_code_ttl_seconds: int = Field(24 * 3600, alias="VERIFICATION_CODE_TTL_SECONDS")
    reset_code_ttl_seconds: int = Field(15 * 60, alias="RESET_CODE_TTL_SECONDS")
    code_max_attempts: int = Field(5, alias="CODE_MAX_ATTEMPTS", ge=1)
    #: verification / reset emails per address per ``code_email_window_seconds``
    code_emails_per_window: int = Field(3, alias="CODE_EMAILS_PER_WINDOW", ge=1)
    code_email_window_seconds: int = Field(15 * 60, alias="CODE_EMAIL_WINDOW_SECONDS")

    # Password guessing (login, reapply, change-password) is throttled per account AND
    # source address, so a stranger's guesses never lock the owner out (auth_service/throttle.py).
    #: wrong passwords one address may try for one account before it has to wait
    login_backoff_after_failures: int = Field(5, alias="LOGIN_BACKOFF_AFTER_FAILURES", ge=1)
    #: the first wait; each further failure from that address doubles it ...
    login_backoff_base_seconds: int = Field(1, alias="LOGIN_BACKOFF_BASE_SECONDS", ge=1)
    #: ... up to this
    login_backoff_max_seconds: int = Field(15 * 60, alias="LOGIN_BACKOFF_MAX_SECONDS", ge=1)
    #: failures are forgotten this long after the last one (per address), or after the
    #: first one (the account's total)
    login_failure_window_seconds: int = Field(3600, alias="LOGIN_FAILURE_WINDOW_SECONDS", ge=1)
    #: failures for one account from all addresses within the window after which only
    #: addresses the account signed in from before may try (a distributed attack)
    login_account_max_failures: int = Field(100, alias="LOGIN_ACCOUNT_MAX_FAILURES", ge=1)
    #: how long an address the account signed in from stays "known" (0: none is)
    login_known_address_days: int = Field(30, alias="LOGIN_KNOWN_ADDRESS_DAYS", ge=0)

    @property
    def password_hash_capacity(self) -> int:
        """Hashes a process takes on at once: the running ones plus the queue."""
        workers = self.password_hash_workers
        queue = 4 * workers if self.password_hash_queue is None else self.password_hash_queue
        return workers + queue

    def production_problems(self) -> list[str]:
        """The shared rules, plus: the seeded admin's password is not weak."""
        problems = super().production_problems()
        problem = seeded_password_problem(
            "ADMIN_PASSWORD", self.admin_password, dev_default=DEV_ADMIN_PASSWORD
        )
        if problem is not None:
            problems.append(problem)
        return problems


@lru_cache
def get_settings() -> AuthSettings:
    return AuthSettings()
