"""event_service business metrics (Prometheus)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SEAT_HOLDS = Counter(
    "event_seat_holds_total",
    "Seat hold requests by outcome (held, conflict, unknown_seats, token_conflict, too_late)",
    ["outcome"],
)
HOLD_CONFIRMS = Counter(
    "event_hold_confirms_total", "Hold confirmations by outcome (sold, expired)", ["outcome"]
)
GATE_REBUILDS = Counter(
    "event_seat_gate_rebuilds_total", "Seat gates rebuilt from PostgreSQL after Redis lost them"
)

QUEUE_JOINS = Counter("event_queue_joins_total", "Buyers who took a place in a waiting room")
QUEUE_ADMITTED = Counter("event_queue_admitted_total", "Buyers a waiting room admitted")
QUEUE_WAITING = Gauge(
    "event_queue_waiting",
    "Buyers in the waiting rooms not yet admitted, all events (as of this replica's last tick)",
)
QUEUE_PASS_REFUSALS = Counter(
    "event_queue_pass_refusals_total",
    "Bookings of a waiting room's event refused for their pass, by reason",
    ["reason"],
)

WAITLIST_JOINS = Counter("event_waitlist_joins_total", "Buyers who joined a class's waiting list")
WAITLIST_OFFERS = Counter(
    "event_waitlist_offers_total",
    "Waiting lists' offers by outcome (made, taken, lapsed, refused)",
    ["outcome"],
)
WAITLIST_WAITING = Gauge(
    "event_waitlist_waiting",
    "Buyers on the waiting lists not yet offered seats, all events (this replica's last round)",
)
for _outcome in ("made", "taken", "lapsed", "refused"):
    WAITLIST_OFFERS.labels(_outcome)  # every outcome is a series from the start
