"""auth_service's business metrics (the HTTP ones come from the shared middleware)."""

from __future__ import annotations

from prometheus_client import Counter

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
