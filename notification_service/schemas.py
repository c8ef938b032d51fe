"""Response bodies of the ``/api/notifications`` routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: str
    recipient: str | None
    subject: str | None
    status: str
    attempts: int
    booking_id: int | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class NotificationList(BaseModel):
    notifications: list[NotificationOut]
