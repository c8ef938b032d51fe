"""notification_service's expected failures: those a request answers with (each with its
HTTP status) and those a delivery try ends with (the messaging layer retries or
dead-letters the message)."""

from __future__ import annotations

from ticketing_common.errors import Conflict, Forbidden


class NotTheTicketHolder(Forbidden):
    """Only a booking's owner or an admin may download its ticket."""


class TicketNotIssued(Conflict):
    """A ticket exists only once its booking is confirmed (and stops once it is not)."""


class DeliveryRetry(Exception):
    """This try failed for a reason that may pass (SMTP down, a detail unavailable)."""


class DeliveryAbandoned(Exception):
    """The notification is marked failed: retrying will not help or the budget is spent."""
