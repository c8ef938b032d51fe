"""Where each part of a stack listens, and the environment its services get.

Two stacks can run side by side: ``dev`` (gateway on :8080, the original's ports) and
``test`` (everything shifted by 10000, its own databases, Redis db and RabbitMQ vhost),
so running the tests never touches a developer's data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES: dict[str, int] = {
    "auth_service": 3001,
    "booking_service": 3002,
    "event_service": 3003,
    "payment_service": 3004,
    "notification_service": 3005,
}
DATABASES: dict[str, str] = {
    "auth_service": "auth_db",
    "booking_service": "booking_db",
    "event_service": "event_db",
    "payment_service": "payment_db",
    "notification_service": "notification_db",
}
REPLICA_PORT_STEP = 100
#: REPLICAS sets every service's count; <PREFIX>_REPLICAS (BOOKING_REPLICAS, ...) one's
REPLICA_SETTINGS = {service: service.split("_")[0].upper() + "_REPLICAS" for service in SERVICES}
TEST_SMTP_PORT = 12525


#: per-buyer limits out of the way of load generators that book without paying from a
#: few accounts (the limits themselves are tested in booking_service/tests)
LOAD_TEST_BUYER_LIMITS = {
    "MAX_HELD_SEATS_PER_BUYER": "1000000",
    "MAX_PENDING_BOOKINGS_PER_BUYER": "1000000",
}


@dataclass(frozen=True)
class Stack:
    name: str
    port_offset: int
    db_suffix: str
    redis_db: int
    vhost: str
    #: processes per service (uvicorn, one port each, balanced by the gateway), unless
    #: ``replica_counts`` names a service's own count
    replicas: int = 1
    replica_counts: dict[str, int] = field(default_factory=dict)
    rate_limit_rps: int = 10
    rate_limit_burst: int = 20
    cors_origin: str = "http://localhost:3000"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return ROOT / ".run" / self.name

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def gateway_port(self) -> int:
        return 8080 + self.port_offset

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def replicas_of(self, service: str) -> int:
        return max(1, self.replica_counts.get(service, self.replicas))

    def service_port(self, service: str, replica: int = 0) -> int:
        return SERVICES[service] + self.port_offset + replica * REPLICA_PORT_STEP

    def service_url(self, service: str, replica: int = 0) -> str:
        return f"http://127.0.0.1:{self.service_port(service, replica)}"

    def database(self, service: str) -> str:
        return DATABASES[service] + self.db_suffix

    def service_env(self, service: str, replica: int = 0) -> dict[str, str]:
        """The environment a service process starts with (the original's variable names)."""
        env = {
            "APP_ENV": "test" if self.name == "test" else "development",
            # glibc gives each thread that allocates its own arena and keeps them; two are
            # plenty for an asyncio process and keep its resident memory flat under load.
            "MALLOC_ARENA_MAX": "2",
            "PORT": str(self.service_port(service, replica)),
            "DB_HOST": "127.0.0.1",
            "DB_PORT": "5432",
            "DB_USER": "ticketing",
            "DB_PASSWORD": "ticketing",
            "DB_NAME": self.database(service),
            "REDIS_ADDR": "127.0.0.1:6379",
            "REDIS_DB": str(self.redis_db),
            "RABBITMQ_HOST": "127.0.0.1",
            "RABBITMQ_PORT": "5672",
            "RABBITMQ_USER": "guest",
            "RABBITMQ_PASS": "guest",
            "RABBITMQ_VHOST": self.vhost,
            "PUBLIC_BASE_URL": self.gateway_url,
            "MAIL_DIR": str(self.run_dir / "mail"),
            "UPLOAD_DIR": str(self.run_dir / "uploads"),
            "ADMIN_EMAIL": "admin@example.com",
            "ADMIN_PASSWORD": "Admin-Password-1",
        }
        # Each replica calls its partner replica of every other service, so internal calls
        # (booking → event holds, payment → booking, ...) spread as the gateway's do. In
        # Kubernetes the Service in front of the pods balances them instead.
        for other in SERVICES:
            if other == "notification_service":  # nobody calls it: messages reach it
                continue
            key = other.split("_")[0].upper() + "_SERVICE_URL"
            env[key] = self.service_url(other, replica % self.replicas_of(other))
        env.update(self.extra_env)
        return env


def replica_counts_from_env() -> dict[str, int]:
    """Each service's own process count where its ``<PREFIX>_REPLICAS`` is set: one busy
    service can use every core of a bigger machine while the others keep one."""
    counts = {}
    for service, name in REPLICA_SETTINGS.items():
        value = os.environ.get(name)
        if value:
            counts[service] = int(value)
            if not 1 <= counts[service] <= 32:
                raise ValueError(f"{name} must be between 1 and 32, not {value}")
    return counts


def stack_named(name: str, replicas: int | None = None) -> Stack:
    replicas = replicas or int(os.environ.get("REPLICAS", "1"))
    counts = replica_counts_from_env()
    if name == "dev":
        return Stack(
            "dev",
            port_offset=0,
            db_suffix="",
            redis_db=0,
            vhost="/",
            replicas=replicas,
            replica_counts=counts,
            rate_limit_rps=int(os.environ.get("RATE_LIMIT_RPS", "10")),
            rate_limit_burst=int(os.environ.get("RATE_LIMIT_BURST", "20")),
        )
    if name == "test":
        return Stack(
            "test",
            port_offset=10000,
            db_suffix="_test",
            redis_db=1,
            vhost="ticketing_test",
            replicas=replicas,
            replica_counts=counts,
            extra_env={
                # The tests run a real SMTP server (aiosmtpd) here and read what arrives.
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(TEST_SMTP_PORT),
                "SMTP_EMAIL": "tickets@example.com",
                # Short holds so expiry journeys finish within a test run.
                "HOLD_TTL_SECONDS": "30",
                # ... and short waiting-list offers, so a lapsed offer passes on in a test.
                "WAITLIST_OFFER_TTL_SECONDS": "30",
                # The k6 smoke and the drills make many unpaid bookings per account on
                # purpose; booking_service's own tests check the per-buyer limits.
                **LOAD_TEST_BUYER_LIMITS,
            },
        )
    raise ValueError(f"unknown stack {name!r}: use dev or test")
