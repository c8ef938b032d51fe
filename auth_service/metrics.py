"""auth_service's business metrics (the HTTP ones come from the shared middleware)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LOGINS = Counter(
    "auth_logins_total",
    "Login attempts by outcome (success, or the refusal's error code)",
    ["outcome"],
)
TOKEN_REFRESHES = Counter(
    "auth_token_refreshes_total",
    "Refresh-token uses by outcome (success, or the refusal's error code)",
    ["outcome"],
)
PASSWORD_HASHES_TAKEN_ON = Gauge(
    "auth_password_hashes_in_progress",
    "Password hashes running or waiting for a worker in this process",
)
PASSWORD_HASHES_REFUSED = Counter(
    "auth_password_hashes_refused_total",
    "Password hashes refused (503) because this process's hash queue was full",
)
