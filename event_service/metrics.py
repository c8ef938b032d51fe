"""event_service business metrics (Prometheus)."""

from __future__ import annotations

from prometheus_client import Counter

SEAT_HOLDS = Counter(
    "event_seat_holds_total",
    "Seat hold requests by outcome (held, conflict, unknown_seats, token_conflict)",
    ["outcome"],
)
HOLD_CONFIRMS = Counter(
    "event_hold_confirms_total", "Hold confirmations by outcome (sold, expired)", ["outcome"]
)
GATE_REBUILDS = Counter(
    "event_seat_gate_rebuilds_total", "Seat gates rebuilt from PostgreSQL after Redis lost them"
)
