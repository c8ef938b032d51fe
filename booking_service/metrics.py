"""booking_service business metrics."""

from __future__ import annotations

from prometheus_client import Counter

BOOKINGS = Counter(
    "bookings_total",
    "Booking outcomes: created, conflict, confirmed, expired, cancelled, failed, refund_requested",
    ["outcome"],
)
for _outcome in (
    "created",
    "conflict",
    "confirmed",
    "expired",
    "cancelled",
    "failed",
    "refund_requested",
):
    BOOKINGS.labels(_outcome)


def count(outcome: str, amount: int = 1) -> None:
    BOOKINGS.labels(outcome).inc(amount)
