"""What the Go original's clients read in every answer (ORIGINAL_API.md): money as JSON
numbers, and gorm's model fields on bookings, events and payments.

A schema that keeps the original's shape takes :data:`Money` for its amounts and inherits
:class:`GormFields` for ``ID``, ``CreatedAt``, ``UpdatedAt`` and ``DeletedAt``; its own
snake_case fields stay beside them (the port's additions).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, PlainSerializer, computed_field

#: money leaves as a JSON number, as the original's float64 did (kept exact inside)
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
#: the largest total a client may name (far above any booking's); beyond it is a 400
MAX_CLIENT_AMOUNT = Decimal(10**10)


class GormFields(BaseModel):
    """gorm's embedded model, named as the original sends it, from the row's ``id``,
    ``created_at`` and ``updated_at``; ``DeletedAt`` is always null (nothing here is
    soft-deleted)."""

    id: int
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ID(self) -> int:
        return self.id

    @computed_field  # type: ignore[prop-decorator]
    @property
    def CreatedAt(self) -> datetime:
        return self.created_at

    @computed_field  # type: ignore[prop-decorator]
    @property
    def UpdatedAt(self) -> datetime:
        return self.updated_at

    @computed_field  # type: ignore[prop-decorator]
    @property
    def DeletedAt(self) -> None:
        return None
