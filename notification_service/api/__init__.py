"""notification_service HTTP routes (``/api/notifications``, public through the gateway)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from notification_service import service
from notification_service.schemas import NotificationList, NotificationOut
from ticketing_common.db import SessionDep
from ticketing_common.security import CurrentUser

router = APIRouter(prefix="/api/notifications", tags=["notifications"])

BookingId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("", response_model=NotificationList)
async def list_my_notifications(
    principal: CurrentUser,
    session: SessionDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> NotificationList:
    """The caller's own notifications, newest first; the total is in ``X-Total-Count``."""
    rows, total = await service.list_notifications(session, principal, limit=limit, offset=offset)
    response.headers["X-Total-Count"] = str(total)
    return NotificationList(notifications=[NotificationOut.model_validate(r) for r in rows])


@router.get(
    "/tickets/{booking_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the PDF ticket"}},
)
async def download_ticket(
    booking_id: BookingId, principal: CurrentUser, request: Request
) -> Response:
    """The PDF ticket of a confirmed booking, for the booking's owner or an admin."""
    pdf = await service.ticket_pdf(
        request.app.state.http, request.app.state.settings, principal, booking_id
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="ticket-{booking_id}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )
