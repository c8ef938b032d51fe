"""Prometheus metrics of the outbox relay and the consumers (DESIGN §10)."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import Counter, Gauge, Histogram


class Outcome(StrEnum):
    """What became of one delivery; the ``outcome`` label of ``messages_consumed_total``."""

    OK = "ok"
    DUPLICATE = "duplicate"
    RETRIED = "retried"
    DEAD_LETTERED = "dead_lettered"


class DeadLetterReason(StrEnum):
    """Why a message was parked; the ``reason`` label of ``messages_dead_lettered_total``."""

    INVALID_MESSAGE = "invalid_message"
    PERMANENT_FAILURE = "permanent_failure"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"


OUTBOX_BACKLOG = Gauge(
    "outbox_backlog", "Outbox messages committed but not yet published to the broker"
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished outbox message"
)
MESSAGES_PUBLISHED = Counter(
    "messages_published",
    "Outbox messages published and confirmed by the broker",
    ["routing_key"],
)
PUBLISH_FAILURES = Counter(
    "messages_publish_failures",
    "Outbox messages whose publication failed (retried later)",
    ["routing_key"],
)
MESSAGES_CONSUMED = Counter(
    "messages_consumed",
    "Deliveries handled by a consumer queue, by outcome",
    ["queue", "outcome"],
)
MESSAGES_DEAD_LETTERED = Counter(
    "messages_dead_lettered",
    "Messages parked in a dead-letter queue, by reason",
    ["queue", "reason"],
)
HANDLER_DURATION = Histogram(
    "message_handler_duration_seconds",
    "Time from delivery to acknowledgement",
    ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
