"""notification_service business metrics."""

from __future__ import annotations

from prometheus_client import Counter

EMAILS = Counter(
    "notification_emails_total",
    "Email delivery tries by notification type and outcome",
    ["type", "outcome"],
)
TICKETS = Counter(
    "notification_tickets_total",
    "PDF tickets handed out, by whether they were rendered or re-served from the store",
    ["source"],
)
