"""The hot write of the purchase path: a booking in one round trip to PostgreSQL.

One statement counts the booking against its buyer's limits for the event
(``buyer_quotas``; nothing is written past one), inserts the booking, its seats, its
``booking_created`` outbox message (and its Idempotency-Key), and wakes the outbox
relays. A single statement is atomic on its own, so it needs no BEGIN/COMMIT round trips;
the partial unique index on active seats (the truth about who has a seat) refuses it
whole. It runs on asyncpg directly: through the ORM the same booking costs about eight
round trips and several times the CPU.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg
import orjson

from booking_service.idempotency import KeyUse
from booking_service.schemas import BookedSeatOut, BookingOut, original_seats
from ticketing_common.db import utcnow
from ticketing_common.internal.models import HoldGranted
from ticketing_common.messaging.contracts import BookedSeat, BookingCreated
from ticketing_common.messaging.envelope import draft_envelope
from ticketing_common.messaging.outbox import NOTIFY_CHANNEL
from ticketing_common.security import Principal

CENT = Decimal("0.01")

#: the unique constraints whose violation means something other than a bug
ACTIVE_SEAT_INDEX = "uq_booking_seats_active_seat"
HOLD_TOKEN_CONSTRAINT = "uq_bookings_hold_token"  # noqa: S105 - a constraint name
KEY_CONSTRAINT = "pk_booking_idempotency_keys"

_BOOKING = """
WITH quota AS (
    INSERT INTO buyer_quotas AS q (event_id, user_id, held_seats, pending_bookings, tickets)
    VALUES ($2, $1, cardinality($12::text[]), 1, cardinality($12::text[]))
    ON CONFLICT (event_id, user_id) DO UPDATE
    SET held_seats = q.held_seats + EXCLUDED.held_seats,
        pending_bookings = q.pending_bookings + 1,
        tickets = q.tickets + EXCLUDED.tickets
    WHERE q.held_seats + EXCLUDED.held_seats <= $19
      AND q.pending_bookings + 1 <= $20
      AND ($21::int IS NULL OR q.tickets + EXCLUDED.tickets <= $21)
    RETURNING 1
), booking AS (
    INSERT INTO bookings (user_id, event_id, organizer_id, status, total_amount, currency,
                          hold_token, expires_at, event_title, event_starts_at, venue,
                          buyer_email, client_seats, created_at, updated_at)
    SELECT $1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $22, now(), now()
    FROM quota
    RETURNING id, created_at
), seats AS (
    INSERT INTO booking_seats (booking_id, event_id, seat_id, ticket_class, "row", number,
                               price, status)
    SELECT booking.id, $2, s.seat_id, s.ticket_class, s.seat_row, s.seat_number, s.price,
           'pending'
    FROM booking,
         unnest($12::text[], $13::text[], $14::int[], $15::int[], $16::numeric[])
             WITH ORDINALITY AS s(seat_id, ticket_class, seat_row, seat_number, price, ord)
    ORDER BY s.ord
), message AS (
    INSERT INTO outbox_messages (message_id, routing_key, envelope)
    SELECT $17, 'booking_created',
           jsonb_set($18::jsonb, '{payload,booking_id}', to_jsonb(booking.id))
    FROM booking
){key_cte}
SELECT booking.id, booking.created_at, pg_notify('{channel}', '') FROM booking
"""
_KEY_CTE = """, idempotency_key AS (
    INSERT INTO booking_idempotency_keys (user_id, key, generation, request_fingerprint,
                                          booking_id, created_at)
    SELECT $1, $23, $24, $25, booking.id, now() FROM booking
)"""
INSERT_BOOKING = _BOOKING.replace("{key_cte}", "").replace("{channel}", NOTIFY_CHANNEL)
INSERT_KEYED_BOOKING = _BOOKING.replace("{key_cte}", _KEY_CTE).replace("{channel}", NOTIFY_CHANNEL)
DROP_LAPSED_KEY = """
DELETE FROM booking_idempotency_keys WHERE user_id = $1 AND key = $2 AND generation = $3
"""


class SeatTaken(Exception):
    """PostgreSQL has one of the seats in another active booking."""


class TokenTaken(Exception):
    """A booking with this hold token exists (a concurrent retry of the same request)."""


class OverQuota(Exception):
    """The buyer's limits for the event refused the booking (nothing was written)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one buyer may have of one event (``BookingSettings`` and the organizer's cap)."""

    held_seats: int
    pending_bookings: int
    tickets: int | None


@dataclass(frozen=True, slots=True)
class Quota:
    held_seats: int = 0
    pending_bookings: int = 0
    tickets: int = 0


_QUOTA = """
SELECT held_seats, pending_bookings, tickets FROM buyer_quotas
WHERE event_id = $1 AND user_id = $2
"""


async def quota_of(pg: asyncpg.Pool, event_id: int, user_id: int) -> Quota:
    row = await pg.fetchrow(_QUOTA, event_id, user_id)
    return Quota(*row) if row is not None else Quota()


@dataclass(frozen=True, slots=True)
class NewBooking:
    """A pending booking as the hold priced it."""

    principal: Principal
    hold: HoldGranted
    seats: list[BookedSeat]
    total: Decimal
    #: the original's ``seats`` string (:func:`~booking_service.schemas.original_seats`)
    client_seats: str

    @classmethod
    def from_hold(
        cls, principal: Principal, hold: HoldGranted, client_order: list[str] | None = None
    ) -> NewBooking:
        """The booking of the held seats; ``client_order`` is the seat ids as the client
        listed them (None for a count: the seats assigned, front rows first)."""
        ordered = sorted(hold.seats, key=lambda s: (s.ticket_class, s.row, s.number))
        seats = [
            BookedSeat(
                seat_id=s.seat_id,
                ticket_class=s.ticket_class,
                row=s.row,
                number=s.number,
                price=s.price.quantize(CENT),
            )
            for s in ordered
        ]
        total = sum((s.price for s in seats), Decimal(0))
        return cls(principal, hold, seats, total, original_seats(_out(seats), client_order))

    def message(self, created_at: datetime) -> BookingCreated:
        """``booking_created`` with ``booking_id`` 0: the statement sets the real id."""
        hold = self.hold
        return BookingCreated(
            booking_id=0,
            user_id=self.principal.user_id,
            buyer_email=self.principal.email,
            event_id=hold.event_id,
            organizer_id=hold.organizer_id,
            event_title=hold.event_title,
            event_starts_at=hold.event_starts_at,
            venue=hold.venue,
            seats=self.seats,
            total_amount=self.total,
            currency=hold.currency,
            expires_at=hold.expires_at,
            created_at=created_at,
        )

    def out(self, booking_id: int, created_at: datetime) -> BookingOut:
        hold = self.hold
        return BookingOut(
            id=booking_id,
            user_id=self.principal.user_id,
            event_id=hold.event_id,
            status="pending",
            total_amount=self.total,
            currency=hold.currency,
            expires_at=hold.expires_at,
            created_at=created_at,
            updated_at=created_at,
            confirmed_at=None,
            cancelled_at=None,
            seat_list=_out(self.seats),
            client_seats=self.client_seats,
        )


def _out(seats: list[BookedSeat]) -> list[BookedSeatOut]:
    return [BookedSeatOut.model_validate(s, from_attributes=True) for s in seats]


async def insert_booking(
    pg: asyncpg.Pool, new: NewBooking, limits: Limits, key_use: KeyUse | None
) -> BookingOut:
    """Write the booking (see module docstring); raise :class:`OverQuota`,
    :class:`SeatTaken` or :class:`TokenTaken` when it is refused, changing nothing."""
    hold, principal = new.hold, new.principal
    draft = draft_envelope("booking_created", new.message(utcnow()))
    args: list[object] = [
        principal.user_id,
        hold.event_id,
        hold.organizer_id,
        new.total,
        hold.currency,
        hold.token,
        hold.expires_at,
        hold.event_title,
        hold.event_starts_at,
        hold.venue,
        principal.email,
        [s.seat_id for s in new.seats],
        [s.ticket_class for s in new.seats],
        [s.row for s in new.seats],
        [s.number for s in new.seats],
        [s.price for s in new.seats],
        uuid.UUID(draft["message_id"]),
        orjson.dumps(draft).decode(),
        limits.held_seats,
        limits.pending_bookings,
        limits.tickets,
        new.client_seats,
    ]
    try:
        async with pg.acquire() as conn:
            if key_use is None:
                row = await conn.fetchrow(INSERT_BOOKING, *args)
            else:
                args += [key_use.key, key_use.generation, key_use.fingerprint]
                async with conn.transaction():
                    if key_use.generation > 0:
                        await conn.execute(
                            DROP_LAPSED_KEY, principal.user_id, key_use.key, key_use.generation - 1
                        )
                    row = await conn.fetchrow(INSERT_KEYED_BOOKING, *args)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == HOLD_TOKEN_CONSTRAINT:
            raise TokenTaken() from exc
        if exc.constraint_name in (ACTIVE_SEAT_INDEX, KEY_CONSTRAINT):
            raise SeatTaken() from exc
        raise
    if row is None:
        raise OverQuota()
    return new.out(row["id"], row["created_at"])
