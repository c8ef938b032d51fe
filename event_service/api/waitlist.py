"""Waiting lists of sold-out classes (``/api/events/{id}/waitlist``, issue 19)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from event_service import waitlist
from event_service.api.deps import EventId, ResourcesDep
from event_service.schemas import WaitlistEntryOut, WaitlistJoin, WaitlistStats
from event_service.service import event_record
from ticketing_common.app import error_responses
from ticketing_common.db import SessionDep
from ticketing_common.seats import TicketClass
from ticketing_common.security import CurrentUser

router = APIRouter(prefix="/api/events", tags=["waiting lists"])

ClassQuery = Annotated[
    TicketClass | None, Query(description="the class's entry (else the latest active one)")
]


@router.post(
    "/{event_id}/waitlist",
    response_model=WaitlistEntryOut,
    status_code=201,
    summary="Wait for seats of a sold-out class",
    description=(
        "Once no seat of the class is free. One entry per account and class: 201 the "
        "first time, 200 after (the same entry). When seats come free the entries get "
        "them in order of joining, as an offer: a pending booking held for the buyer "
        "(`WAITLIST_OFFER_TTL_SECONDS`, 30 minutes by default) and an email with the link "
        "to pay; an offer not paid in time passes to the next entry. Meanwhile the class's "
        "freed seats are kept for the list: nobody else can book them."
    ),
    responses=error_responses(400, 404, 409),
)
async def join_waitlist(
    event_id: EventId,
    body: WaitlistJoin,
    principal: CurrentUser,
    resources: ResourcesDep,
    session: SessionDep,
    response: Response,
) -> WaitlistEntryOut:
    record = await event_record(resources, event_id)
    joined = await waitlist.join(
        session, resources, record, principal, body.ticket_class, body.seat_count
    )
    if not joined.new:
        response.status_code = 200
    return joined.entry


@router.get(
    "/{event_id}/waitlist/me",
    response_model=WaitlistEntryOut,
    summary="The caller's entry: its place, or its offer",
    responses=error_responses(404),
)
async def my_waitlist_entry(
    event_id: EventId, principal: CurrentUser, session: SessionDep, ticket_class: ClassQuery = None
) -> WaitlistEntryOut:
    return await waitlist.my_entry(session, event_id, principal.user_id, ticket_class)


@router.delete(
    "/{event_id}/waitlist/me",
    status_code=204,
    summary="Leave the waiting list",
    description="An entry whose seats are being offered stays: cancel the offered booking.",
    responses=error_responses(404, 409),
)
async def leave_waitlist(
    event_id: EventId, principal: CurrentUser, session: SessionDep, ticket_class: ClassQuery = None
) -> Response:
    await waitlist.leave(session, event_id, principal.user_id, ticket_class)
    return Response(status_code=204)


@router.get(
    "/{event_id}/waitlist",
    response_model=WaitlistStats,
    summary="Each class's waiting list (the event's organizer or an admin)",
    responses=error_responses(403, 404),
)
async def waitlist_stats(
    event_id: EventId, principal: CurrentUser, resources: ResourcesDep, session: SessionDep
) -> WaitlistStats:
    record = await event_record(resources, event_id)
    return await waitlist.stats(session, record, principal)
