"""``/api/bookings``: create, read and cancel bookings (DESIGN §4)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from booking_service import checkin, create, queries, reads, saga
from booking_service.api.deps import BookingId, EventId, EventsDep, ResourcesDep
from booking_service.models import BookingStatus
from booking_service.queries import BookingFilter
from booking_service.schemas import (
    BookingCancelledOut,
    BookingCreate,
    BookingCreated,
    BookingDetailOut,
    BookingEnvelope,
    BookingList,
    BookingOut,
    SalesList,
    TakenSeatOut,
    TakenSeats,
)
from ticketing_common.db import SessionDep
from ticketing_common.pagination import MAX_ID, PageDep
from ticketing_common.security import AdminUser, CurrentUser, OrganizerOrAdmin, OrganizerUser

router = APIRouter(prefix="/api/bookings", tags=["bookings"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="retrying with the same key (per user, 24 h) returns the same booking",
    ),
]
QueuePass = Annotated[
    str | None,
    Header(
        alias="X-Queue-Pass",
        min_length=1,
        max_length=2048,
        description="the pass of the event's waiting room (`GET /api/events/{id}/queue/me`), "
        "when the event sells through one",
    ),
]
StatusFilter = Annotated[BookingStatus | None, Query(description="only this status")]
OwnStatusFilter = Annotated[
    BookingStatus | Literal["all"],
    Query(description="only this status (`all`: every booking); paid ones by default"),
]
SalesStatusFilter = Annotated[
    BookingStatus, Query(description="which bookings count; paid ones by default")
]
REPLAYED_HEADER = "Idempotent-Replayed"


@router.post(
    "",
    status_code=201,
    responses={
        404: {"description": "no such event"},
        409: {
            "description": "a seat is taken, the amount is not the price (`amount_mismatch`), "
            "a buyer limit is reached, or the event has started"
        },
        422: {"description": "the Idempotency-Key was used for another request"},
        403: {"description": "the queue pass is another buyer's, another event's or lapsed"},
        428: {"description": "the event sells through its waiting room: a pass is needed"},
    },
)
async def create_booking(
    body: BookingCreate,
    principal: CurrentUser,
    resources: ResourcesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    queue_pass: QueuePass = None,
) -> BookingCreated:
    """Hold the seats and create a pending booking, priced by the server."""
    outcome = await create.create_booking(
        resources, principal, body, idempotency_key, queue_pass=queue_pass
    )
    if outcome.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return BookingCreated(message="booking created; pay before it expires", booking=outcome.booking)


@router.get("/user")
async def my_bookings(
    principal: CurrentUser,
    resources: ResourcesDep,
    page: PageDep,
    response: Response,
    status: OwnStatusFilter = BookingStatus.CONFIRMED,
) -> BookingList:
    """The caller's bookings: the paid (confirmed) ones by default, as the original."""
    items, total = await queries.list_bookings(
        resources.pg,
        BookingFilter(status=None if status == "all" else status, user_id=principal.user_id),
        limit=page.limit,
        offset=page.offset,
    )
    page.answer_total(response, total)
    return BookingList(bookings=items)


@router.get("/all")
async def all_bookings(
    _: AdminUser,
    resources: ResourcesDep,
    page: PageDep,
    response: Response,
    status: StatusFilter = None,
    event_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> BookingList:
    items, total = await queries.list_bookings(
        resources.pg,
        BookingFilter(status=status, event_id=event_id, user_id=user_id),
        limit=page.limit,
        offset=page.offset,
    )
    page.answer_total(response, total)
    return BookingList(bookings=items)


@router.get("/organizer/sales")
async def my_sales(
    principal: OrganizerUser,
    resources: ResourcesDep,
    page: PageDep,
    response: Response,
    status: SalesStatusFilter = BookingStatus.CONFIRMED,
) -> SalesList:
    """Bookings of the organizer's own events (paid ones unless ``status`` says otherwise)."""
    items, total = await queries.list_bookings(
        resources.pg,
        BookingFilter(status=status, organizer_id=principal.user_id),
        limit=page.limit,
        offset=page.offset,
    )
    page.answer_total(response, total)
    return SalesList(sales=items)


@router.get("/organizer/sales/{event_id}")
async def event_sales(
    event_id: EventId,
    principal: OrganizerOrAdmin,
    session: SessionDep,
    events: EventsDep,
    resources: ResourcesDep,
    page: PageDep,
    response: Response,
    status: SalesStatusFilter = BookingStatus.CONFIRMED,
) -> SalesList:
    """Bookings of one event, for its own organizer (or an admin)."""
    await reads.ensure_event_organizer(session, events, principal, event_id)
    items, total = await queries.list_bookings(
        resources.pg,
        BookingFilter(status=status, event_id=event_id),
        limit=page.limit,
        offset=page.offset,
    )
    page.answer_total(response, total)
    return SalesList(sales=items)


@router.get("/event/{event_id}/seats")
async def taken_seats(event_id: EventId, _: CurrentUser, session: SessionDep) -> TakenSeats:
    """Seats of the event in active bookings: ``locked`` (awaiting payment) or ``sold``."""
    seats = await reads.taken_seats(session, event_id)
    return TakenSeats(
        event_id=event_id,
        seats=[TakenSeatOut.model_validate(seat, from_attributes=True) for seat in seats],
    )


@router.get(
    "/{booking_id}",
    responses={403: {"description": "not the owner, the event's organizer or an admin"}},
)
async def get_booking(
    booking_id: BookingId, principal: CurrentUser, session: SessionDep, resources: ResourcesDep
) -> BookingEnvelope:
    """The booking, with each seat's ticket code once it is confirmed."""
    booking = await reads.booking_for_reader(session, principal, booking_id)
    tickets = checkin.tickets_of(booking, resources.settings.ticket_signing_secret)
    detail = BookingDetailOut.model_validate(booking)
    return BookingEnvelope(booking=detail.model_copy(update={"tickets": tickets}))


@router.post(
    "/{booking_id}/cancel",
    responses={
        403: {"description": "not the booking's owner"},
        409: {"description": "already over, or the event has started"},
    },
)
async def cancel_booking(
    booking_id: BookingId,
    principal: CurrentUser,
    session: SessionDep,
    events: EventsDep,
    request: Request,
) -> BookingCancelledOut:
    """pending → cancelled (seats freed at once); confirmed → cancelled and refunded."""
    booking, refunded = await saga.cancel_booking(
        session, events, principal, booking_id, ip=_client_ip(request)
    )
    message = "booking cancelled; a refund was requested" if refunded else "booking cancelled"
    return BookingCancelledOut(
        message=message, booking=BookingOut.model_validate(booking), refund_requested=refunded
    )


def _client_ip(request: Request) -> str | None:
    """The buyer's address as the gateway saw it (it overwrites ``X-Real-IP``)."""
    return request.headers.get("X-Real-IP") or (request.client.host if request.client else None)
