"""notification_service HTTP routes (``/api/notifications``, public through the gateway)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from notification_service import service
from notification_service.api.deps import BookingId, ResourcesDep
from notification_service.schemas import NotificationList, NotificationOut
from ticketing_common.app import error_responses
from ticketing_common.db import SessionDep
from ticketing_common.pagination import PageDep
from ticketing_common.security import CurrentUser

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


@router.get("", response_model=NotificationList)
async def list_my_notifications(
    principal: CurrentUser,
    session: SessionDep,
    response: Response,
    page: PageDep,
) -> NotificationList:
    """The caller's own notifications, newest first; the total is in ``X-Total-Count``."""
    rows, total = await service.list_notifications(
        session, principal, limit=page.limit, offset=page.offset
    )
    page.answer_total(response, total)
    return NotificationList(notifications=[NotificationOut.model_validate(r) for r in rows])


@router.get(
    "/tickets/{booking_id}/pdf",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "the PDF ticket"},
        **error_responses(403, 409),
    },
)
async def download_ticket(
    booking_id: BookingId, principal: CurrentUser, resources: ResourcesDep
) -> Response:
    """The PDF ticket of a confirmed booking, for the booking's owner or an admin."""
    pdf = await service.ticket_pdf(resources.lookups, resources.tickets, principal, booking_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="ticket-{booking_id}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )
