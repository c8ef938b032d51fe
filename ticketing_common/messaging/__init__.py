"""Reliable messaging (DESIGN §8): transactional outbox, idempotent inbox consumers.

Public API (implemented in this package's modules)::

    await publish(session, "booking_confirmed", BookingConfirmed(...))
        # writes an outbox row in the caller's transaction; returns the message id

    async def on_booking_confirmed(ctx: MessageContext, payload: BookingConfirmed) -> None:
        ...  # runs in a transaction (ctx.session) with the inbox record; may publish()

    create_service_app(..., lifecycles=[messaging_lifecycle(
        subscriptions=[Subscription("booking_confirmed", on_booking_confirmed)],
    )])
"""
