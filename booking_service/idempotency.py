"""``Idempotency-Key`` on booking requests: per user, valid for a day.

A key is recorded with the booking it created, in the same statement (``store.py``). Its
hold token is derived from the user, the key and the request, so a retry re-finds the hold
an earlier attempt took even if that attempt died before recording anything. ``generation`` counts
reuses of a key after it lapsed, so each use gets a hold token of its own.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from booking_service.errors import IdempotencyKeyReused
from booking_service.schemas import CENT, BookingCreate
from ticketing_common.db import utcnow

#: namespace of the hold tokens derived from an Idempotency-Key
HOLD_TOKEN_NAMESPACE = uuid.UUID("6f1d3c52-9a4e-4c1b-8d7e-2b5f0a9c3e61")


@dataclass(frozen=True, slots=True)
class KeyUse:
    """One use of an ``Idempotency-Key``: which reuse of the key, for which request."""

    key: str
    generation: int
    fingerprint: str


def request_fingerprint(body: BookingCreate) -> str:
    """What makes two booking requests "the same request" for an Idempotency-Key."""
    if body.seats is not None:
        canonical: dict[str, object] = {"event_id": body.event_id, "seat_ids": body.seat_ids}
    else:
        canonical = {
            "event_id": body.event_id,
            "ticket_class": body.ticket_class,
            "seat_count": body.seat_count,
        }
    if body.client_totals:  # a retry naming another total is another request
        canonical["amounts"] = [str(total.quantize(CENT)) for total in body.client_totals]
    encoded = json.dumps(canonical, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()


def hold_token_for(user_id: int, use: KeyUse) -> str:
    """The hold token of a keyed request: a retry after a crash re-finds the same hold."""
    name = f"{user_id}\n{use.generation}\n{use.fingerprint}\n{use.key}"
    return str(uuid.uuid5(HOLD_TOKEN_NAMESPACE, name))


@dataclass(frozen=True, slots=True)
class KeyRecord:
    generation: int
    request_fingerprint: str
    booking_id: int
    created_at: datetime


_FIND_KEY = """
SELECT generation, request_fingerprint, booking_id, created_at
FROM booking_idempotency_keys WHERE user_id = $1 AND key = $2
"""


async def find_key(pg: asyncpg.Pool, user_id: int, key: str) -> KeyRecord | None:
    """The key's record, read on its own pooled connection (returned before the hold)."""
    row = await pg.fetchrow(_FIND_KEY, user_id, key)
    return KeyRecord(*row) if row is not None else None


async def refuse_reused_key(pg: asyncpg.Pool, user_id: int, use: KeyUse) -> None:
    """A concurrent request took the same key for a different booking first: 422."""
    record = await find_key(pg, user_id, use.key)
    if (
        record is not None
        and record.generation >= use.generation
        and record.request_fingerprint != use.fingerprint
    ):
        raise IdempotencyKeyReused()


def is_live(record: KeyRecord, ttl_seconds: int) -> bool:
    return record.created_at > utcnow() - timedelta(seconds=ttl_seconds)
