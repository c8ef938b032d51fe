"""Other services' ``audit_logs`` events are consumed into the audit log, once each."""

from __future__ import annotations

import asyncio
import time
import uuid

from fastapi import FastAPI

from auth_service.consumers import on_audit_log
from auth_service.tests.support import AuthClient
from ticketing_common.db import utcnow
from ticketing_common.messaging import Envelope, MessageContext, publish
from ticketing_common.messaging.contracts import AuditLog


def _event(action: str = "booking_cancelled_by_admin") -> AuditLog:
    return AuditLog(
        action=action,
        service="booking_service",
        actor_user_id=1,
        target_type="booking",
        target_id="42",
        ip="198.51.100.7",
        details={"reason": "duplicate"},
    )


async def _consume(app: FastAPI, event: AuditLog, times: int = 1) -> None:
    envelope = Envelope(
        message_id=uuid.uuid4(),
        type="audit_logs",
        occurred_at=utcnow(),
        producer="booking_service",
        payload=event.model_dump(mode="json"),
    )
    for _ in range(times):
        async with app.state.sessionmaker() as session, session.begin():
            ctx = MessageContext(
                session=session,
                envelope=envelope,
                app=app,
                queue="auth_service.audit_logs",
                attempt=1,
            )
            await on_audit_log(ctx, event)


async def test_audit_event_from_another_service_is_stored(app: FastAPI, auth: AuthClient) -> None:
    await _consume(app, _event(), times=2)  # a redelivery changes nothing

    rows = (
        await auth.sql("SELECT * FROM audit_logs WHERE action = 'booking_cancelled_by_admin'")
    ).all()
    assert len(rows) == 1
    row = rows[0]
    assert row.service == "booking_service"
    assert (row.target_type, row.target_id, row.ip) == ("booking", "42", "198.51.100.7")
    assert row.details == {"reason": "duplicate"}
    assert row.message_id is not None


async def test_actions_the_original_logged_are_stored_under_its_names(
    app: FastAPI, auth: AuthClient
) -> None:
    port_names = ["event_created", "booking_created", "booking_confirmed", "booking_cancelled"]
    for action in [*port_names, "CANCEL_BOOKING"]:
        await _consume(app, _event(action))

    stored = await auth.sql(
        "SELECT action FROM audit_logs WHERE service = 'booking_service' ORDER BY id"
    )

    assert stored.scalars().all() == [
        "CREATE_EVENT",
        "CREATE_BOOKING",
        "CONFIRM_BOOKING",
        "CANCEL_BOOKING",
        "CANCEL_BOOKING",
    ]


async def test_audit_event_travels_through_the_broker_into_the_log(
    app: FastAPI, auth: AuthClient
) -> None:
    action = f"probe_{uuid.uuid4().hex[:8]}"
    async with app.state.sessionmaker() as session, session.begin():
        await publish(session, "audit_logs", _event(action))

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        count = (
            await auth.sql("SELECT count(*) FROM audit_logs WHERE action = :a", a=action)
        ).scalar()
        if count:
            break
        await asyncio.sleep(0.2)
    assert count == 1
    admin = await auth.admin()
    listed = await auth.http.get(
        "/api/auth/admin/audit-logs", params={"service": "booking_service"}, headers=admin.headers
    )
    assert action in [e["action"] for e in listed.json()]
