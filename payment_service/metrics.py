"""payment_service's business metrics (the HTTP ones come from the shared middleware)."""

from __future__ import annotations

from prometheus_client import Counter

PAYMENTS = Counter(
    "payments_total",
    "Payments by outcome: initialized, success, failed, refunded",
    ["outcome"],
)
PAYMENT_CALLBACKS = Counter(
    "payment_callbacks_total",
    "Provider callbacks by result: accepted, bad_signature, stale, unknown_payment",
    ["result"],
)
BOOKING_LOOKUPS = Counter(
    "payment_booking_lookups_total",
    "Where initialize found the booking: record (this service's own, from booking_created "
    "or an earlier fetch), fetched (asked of booking_service: the buyer beat the message)",
    ["source"],
)
