"""Reliable messaging (DESIGN §8): transactional outbox, idempotent inbox consumers.

Public API::

    await publish(session, "booking_confirmed", BookingConfirmed(...))
        # writes an outbox row in the caller's transaction; returns the message id

    async def on_booking_confirmed(ctx: MessageContext, payload: BookingConfirmed) -> None:
        ...  # runs in a transaction (ctx.session) with the inbox record; may publish()
        # raise PermanentFailure to dead-letter at once; any other exception is retried

    Subscription("booking_created", OneStatement(sql, arguments))
        # a handler that is one write, sent with the inbox row as one statement

    create_service_app(..., lifecycles=[messaging_lifecycle(
        subscriptions=[Subscription("booking_confirmed", on_booking_confirmed)],
    )])

:class:`OutboxRelay` and :class:`Consumer` also run on their own (tests, tools), and
:mod:`.topology` names the queues (``<service>.<key>``, ``<service>.dead_letter``).
"""

from ticketing_common.messaging.config import MessagingSettings
from ticketing_common.messaging.consumer import (
    Consumer,
    MessageContext,
    OneStatement,
    PermanentFailure,
    Subscription,
)
from ticketing_common.messaging.envelope import Envelope
from ticketing_common.messaging.lifecycle import messaging_lifecycle
from ticketing_common.messaging.metrics import DeadLetterReason, Outcome
from ticketing_common.messaging.outbox import OutboxRelay, publish
from ticketing_common.messaging.schema import MESSAGING_TABLES

__all__ = [
    "MESSAGING_TABLES",
    "Consumer",
    "DeadLetterReason",
    "Envelope",
    "MessageContext",
    "MessagingSettings",
    "OneStatement",
    "OutboxRelay",
    "Outcome",
    "PermanentFailure",
    "Subscription",
    "messaging_lifecycle",
    "publish",
]
