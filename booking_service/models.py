"""booking_service tables (its own database: booking_db)."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy.orm import DeclarativeBase

from ticketing_common.db import TYPE_ANNOTATION_MAP, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP
