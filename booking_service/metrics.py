"""booking_service business metrics."""

from __future__ import annotations

from prometheus_client import Counter

from booking_service.models import CheckinResult

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


CHECKINS = Counter(
    "checkins_total",
    "Ticket scans at the door by result: ok, already_checked_in, invalid, cancelled, "
    "wrong_event (online and uploaded offline)",
    ["result"],
)
for _result in CheckinResult:
    CHECKINS.labels(_result.value)


def count_checkins(results: list[CheckinResult]) -> None:
    for result in results:
        CHECKINS.labels(result.value).inc()
