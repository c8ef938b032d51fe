"""Checking tickets in at the door (issue 19).

A door scans a ticket code (:mod:`ticketing_common.tickets`): one seat's, or a first
ticket's code for its whole booking. The event's organizer, or an admin, checks it in:

- **exactly once**, however many doors scan it in the same instant: ``ticket_checkins``
  has one row per seat, and ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` lets the
  database, not a read before the write, pick the first scan; the others wait for its
  commit and read its time;
- **offline**: a door keeps the event's codes (:func:`door_list`) and uploads its scans
  later (:func:`check_in_offline`). The earliest scan of a seat wins, in the upload and
  against a check-in already recorded (``ON CONFLICT DO UPDATE ... WHERE`` the recorded one
  is later), and each scan is told which one won.

The scanned bookings are read ``FOR KEY SHARE``: a cancel (``FOR UPDATE``) waits for the
check-in to commit, so no seat is let in on a booking cancelled in between. Every scan is
logged in ``checkin_scans``, whatever its answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from booking_service import metrics
from booking_service.errors import ScanFromTheFuture, TooManyScans
from booking_service.models import Booking, BookingStatus, CheckinResult
from booking_service.reads import event_organizer_id
from booking_service.schemas import (
    MAX_SCANS_PER_BATCH,
    CheckinBatch,
    CheckinBatchOut,
    CheckinOut,
    CheckinRequest,
    CheckinStats,
    DoorBookingCode,
    DoorList,
    DoorTicket,
    OfflineScanOut,
    ScanWinner,
    TicketOut,
)
from ticketing_common.db import on_commit, utcnow
from ticketing_common.errors import Forbidden
from ticketing_common.internal.clients import EventsApi
from ticketing_common.security import Principal, Role
from ticketing_common.tickets import (
    InvalidTicketCode,
    TicketCode,
    sign_booking_code,
    sign_ticket_code,
    verify_ticket_code,
)

#: how far ahead of this server's clock an offline door's clock may run
SCAN_CLOCK_SKEW = timedelta(minutes=5)

SeatKey = tuple[int, str]  # (booking_id, seat_id)


def tickets_of(booking: Booking, secret: str) -> list[TicketOut]:
    """Each seat's ticket code, as its QR code prints it; none before the booking is paid
    nor after it is cancelled."""
    if booking.status != BookingStatus.CONFIRMED:
        return []
    return [
        TicketOut(
            seat_id=seat.seat_id,
            code=sign_ticket_code(booking.id, booking.event_id, seat.seat_id, secret),
        )
        for seat in booking.seats
    ]


# -- who may scan --------------------------------------------------------------------------


def _organizes(principal: Principal, organizer_id: int) -> bool:
    return principal.role is Role.ORGANIZER and principal.user_id == organizer_id


async def _runs_door(
    session: AsyncSession, events: EventsApi, principal: Principal, event_id: int
) -> bool:
    """An admin, or the event's organizer, checks in the event's tickets."""
    if principal.is_admin:
        return True
    if principal.role is not Role.ORGANIZER:
        return False
    return _organizes(principal, await event_organizer_id(session, events, event_id))


_NOT_YOURS = "only the event's organizer or an admin checks its tickets in"


# -- the scanned bookings ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScannedBooking:
    booking_id: int
    event_id: int
    organizer_id: int
    status: str
    was_confirmed: bool
    seat_ids: tuple[str, ...]

    def seats_of(self, code: TicketCode) -> tuple[str, ...]:
        """The seats the code admits to (none: a seat this booking does not have)."""
        if code.seat_id is None:
            return self.seat_ids
        return (code.seat_id,) if code.seat_id in self.seat_ids else ()

    def refusal(self, code: TicketCode) -> CheckinResult | None:
        """Why the code admits nobody (a seat it does not have, a booking not paid or
        cancelled since), or None: its seats may go in."""
        if not self.seats_of(code):
            return CheckinResult.INVALID
        if self.status == BookingStatus.CONFIRMED:
            return None
        if self.status == BookingStatus.CANCELLED and self.was_confirmed:
            return CheckinResult.CANCELLED
        return CheckinResult.INVALID


_LOCK_BOOKINGS = text(
    """
    SELECT b.id, b.event_id, b.organizer_id, b.status, b.confirmed_at IS NOT NULL AS confirmed,
           ARRAY(SELECT s.seat_id FROM booking_seats s WHERE s.booking_id = b.id ORDER BY s.id)
               AS seat_ids
    FROM bookings b
    WHERE b.id = ANY(CAST(:ids AS bigint[]))
    ORDER BY b.id
    FOR KEY SHARE OF b
    """
)


async def _lock_bookings(
    session: AsyncSession, codes: Sequence[TicketCode | None]
) -> dict[int, ScannedBooking]:
    """The bookings genuine codes name (by id), locked against a cancel until commit; a
    booking of another event than its code names counts as unknown."""
    events_named = {code.booking_id: code.event_id for code in codes if code is not None}
    if not events_named:
        return {}
    rows = await session.execute(_LOCK_BOOKINGS, {"ids": sorted(events_named)})
    return {
        row.id: ScannedBooking(
            row.id, row.event_id, row.organizer_id, row.status, row.confirmed, tuple(row.seat_ids)
        )
        for row in rows
        if events_named[row.id] == row.event_id
    }


def _read_code(code: str, secret: str) -> TicketCode | None:
    try:
        return verify_ticket_code(code, secret)
    except InvalidTicketCode:
        return None


# -- the scan log --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanRecord:
    event_id: int | None
    code: TicketCode | None
    result: CheckinResult
    scanned_at: datetime
    device: str | None


_LOG_SCANS = text(
    """
    INSERT INTO checkin_scans (event_id, booking_id, seat_id, result, scanned_by, scanned_at,
                               recorded_at, offline, device)
    SELECT u.event_id, u.booking_id, u.seat_id, u.result, :scanned_by, u.scanned_at,
           :recorded_at, :offline, u.device
    FROM unnest(CAST(:event_ids AS bigint[]), CAST(:booking_ids AS bigint[]),
                CAST(:seat_ids AS text[]), CAST(:results AS text[]),
                CAST(:scanned_ats AS timestamptz[]), CAST(:devices AS text[]))
         AS u(event_id, booking_id, seat_id, result, scanned_at, device)
    """
)


async def _log_scans(
    session: AsyncSession,
    principal: Principal,
    records: Sequence[ScanRecord],
    *,
    offline: bool,
    now: datetime,
) -> None:
    """Every scan in one statement; their results count once the transaction commits."""
    await session.execute(
        _LOG_SCANS,
        {
            "scanned_by": principal.user_id,
            "recorded_at": now,
            "offline": offline,
            "event_ids": [r.event_id for r in records],
            "booking_ids": [r.code.booking_id if r.code else None for r in records],
            "seat_ids": [r.code.seat_id if r.code else None for r in records],
            "results": [r.result.value for r in records],
            "scanned_ats": [r.scanned_at for r in records],
            "devices": [r.device for r in records],
        },
    )
    results = [r.result for r in records]
    on_commit(session, lambda: metrics.count_checkins(results))


# -- online: one scan, now -----------------------------------------------------------------


_CHECK_IN = text(
    """
    INSERT INTO ticket_checkins (booking_id, seat_id, checked_in_at, checked_in_by, device,
                                 offline)
    SELECT :booking_id, seat_id, :now, :by, :device, false
    FROM unnest(CAST(:seat_ids AS text[])) AS seat_id
    ON CONFLICT (booking_id, seat_id) DO NOTHING
    RETURNING seat_id
    """
)
_FIRST_CHECK_IN = text(
    """
    SELECT min(checked_in_at) FROM ticket_checkins
    WHERE booking_id = :booking_id AND seat_id = ANY(CAST(:seat_ids AS text[]))
    """
)


async def _let_in(
    session: AsyncSession,
    principal: Principal,
    booking_id: int,
    seat_ids: Sequence[str],
    *,
    device: str | None,
    now: datetime,
) -> tuple[CheckinResult, datetime]:
    """``ok`` if any of the seats was not in yet (now in), else ``already_checked_in``
    with the first check-in's time. A concurrent scan's insert of the same seat waits
    for this one's commit, finds the row and reads this time."""
    params: dict[str, Any] = {"booking_id": booking_id, "seat_ids": sorted(seat_ids)}
    inserted = await session.execute(
        _CHECK_IN, {**params, "now": now, "by": principal.user_id, "device": device}
    )
    if inserted.first() is not None:
        return CheckinResult.OK, now
    first: datetime = await session.scalar(_FIRST_CHECK_IN, params)
    return CheckinResult.ALREADY_CHECKED_IN, first


async def check_in(
    session: AsyncSession,
    events: EventsApi,
    principal: Principal,
    scan: CheckinRequest,
    secret: str,
) -> CheckinOut:
    """Check a scanned code in now, for the organizer of its event or an admin.

    A genuine code of a known booking: its organizer (or an admin) gets the answer, and
    the organizer of the event the door names gets ``wrong_event`` for another event's
    ticket; anyone else 403. A code that names no known booking answers ``invalid`` to an
    admin and to an organizer (of the named event, when the door names one).
    """
    now = utcnow()
    code = _read_code(scan.code, secret)
    booking = (await _lock_bookings(session, [code])).get(code.booking_id) if code else None
    checked_in_at: datetime | None = None
    if code is None or booking is None:
        await _ensure_answers_invalid(session, events, principal, scan.event_id)
        result = CheckinResult.INVALID
    elif principal.is_admin or _organizes(principal, booking.organizer_id):
        result, checked_in_at = await _admit(session, principal, scan, code, booking, now)
    elif (
        scan.event_id is not None
        and scan.event_id != booking.event_id
        and await _runs_door(session, events, principal, scan.event_id)
    ):
        result = CheckinResult.WRONG_EVENT
    else:
        raise Forbidden(_NOT_YOURS)
    if booking is not None:
        event_id: int | None = booking.event_id
    else:
        event_id = scan.event_id or (code.event_id if code else None)
    await _log_scans(
        session,
        principal,
        [ScanRecord(event_id, code, result, now, scan.device)],
        offline=False,
        now=now,
    )
    return CheckinOut(
        result=result,
        booking_id=code.booking_id if code else None,
        seat_id=code.seat_id if code else None,
        checked_in_at=checked_in_at,
    )


async def _ensure_answers_invalid(
    session: AsyncSession, events: EventsApi, principal: Principal, event_id: int | None
) -> None:
    """Whom an unknown code is ``invalid`` to: an admin, an organizer, and when the door
    names its event, only that event's organizer."""
    if principal.role not in (Role.ORGANIZER, Role.ADMIN):
        raise Forbidden(_NOT_YOURS)
    if event_id is not None and not await _runs_door(session, events, principal, event_id):
        raise Forbidden(_NOT_YOURS)


async def _admit(
    session: AsyncSession,
    principal: Principal,
    scan: CheckinRequest,
    code: TicketCode,
    booking: ScannedBooking,
    now: datetime,
) -> tuple[CheckinResult, datetime | None]:
    if scan.event_id is not None and scan.event_id != booking.event_id:
        return CheckinResult.WRONG_EVENT, None
    refusal = booking.refusal(code)
    if refusal is not None:
        return refusal, None
    return await _let_in(
        session, principal, booking.booking_id, booking.seats_of(code), device=scan.device, now=now
    )


# -- offline: an upload of scans, the earliest wins ----------------------------------------


_CHECK_IN_EARLIEST = text(
    """
    INSERT INTO ticket_checkins AS c (booking_id, seat_id, checked_in_at, checked_in_by,
                                      device, offline)
    SELECT u.booking_id, u.seat_id, u.checked_in_at, :by, u.device, true
    FROM unnest(CAST(:booking_ids AS bigint[]), CAST(:seat_ids AS text[]),
                CAST(:times AS timestamptz[]), CAST(:devices AS text[]))
         AS u(booking_id, seat_id, checked_in_at, device)
    ON CONFLICT (booking_id, seat_id) DO UPDATE
    SET checked_in_at = excluded.checked_in_at, checked_in_by = excluded.checked_in_by,
        device = excluded.device, offline = excluded.offline
    WHERE c.checked_in_at > excluded.checked_in_at
    RETURNING c.booking_id, c.seat_id, c.xmax = 0 AS inserted
    """
)
_CHECKED_IN_AT = text(
    """
    SELECT c.booking_id, c.seat_id, c.checked_in_at
    FROM ticket_checkins c
    JOIN unnest(CAST(:booking_ids AS bigint[]), CAST(:seat_ids AS text[]))
         AS u(booking_id, seat_id)
      ON c.booking_id = u.booking_id AND c.seat_id = u.seat_id
    """
)


@dataclass(frozen=True, slots=True)
class _Upload:
    """An upload's admitted scans and what the database made of them."""

    #: each admitted scan's seats, by the scan's index in the upload
    seats: dict[int, list[SeatKey]]
    #: each seat's earliest scan in the upload
    earliest: dict[SeatKey, int]
    #: seats whose earliest scan became the check-in: True if the seat had none before
    written: dict[SeatKey, bool]
    #: each seat's check-in time after the upload
    checked_in_at: dict[SeatKey, datetime]
    #: the upload's admitted scans of each seat
    scans_of_seat: Counter[SeatKey]

    def outcome(self, index: int) -> tuple[CheckinResult, datetime, bool, ScanWinner]:
        """The scan's result, its seats' first check-in time, whether its seats were
        scanned more than once (here or before), and whose time stands."""
        seats = self.seats[index]
        winners = {self._winner(seat, index) for seat in seats}
        conflict = any(
            self.scans_of_seat[seat] > 1 or not self.written.get(seat, False) for seat in seats
        )
        winner: ScanWinner = next(
            w for w in ("this_scan", "other_scan", "recorded") if w in winners
        )
        result = CheckinResult.OK if winner == "this_scan" else CheckinResult.ALREADY_CHECKED_IN
        return result, min(self.checked_in_at[seat] for seat in seats), conflict, winner

    def _winner(self, seat: SeatKey, index: int) -> ScanWinner:
        if seat not in self.written:
            return "recorded"
        return "this_scan" if self.earliest[seat] == index else "other_scan"


async def check_in_offline(
    session: AsyncSession,
    events: EventsApi,
    principal: Principal,
    batch: CheckinBatch,
    secret: str,
) -> CheckinBatchOut:
    """Record an offline door's scans of one event, for its organizer or an admin: the
    earliest scan of each seat is its check-in (its time, scanner and device), replacing a
    later one already recorded; every scan learns its result and which scan won."""
    now = utcnow()
    _refuse_unbounded(batch, now)
    if not await _runs_door(session, events, principal, batch.event_id):
        raise Forbidden(_NOT_YOURS)
    codes = [_read_code(scan.code, secret) for scan in batch.scans]
    bookings = await _lock_bookings(session, codes)
    verdicts: list[CheckinResult | None] = []
    seats: dict[int, list[SeatKey]] = {}
    for index, code in enumerate(codes):
        booking = bookings.get(code.booking_id) if code else None
        if code is None or booking is None:
            verdicts.append(CheckinResult.INVALID)
        elif booking.event_id != batch.event_id:
            verdicts.append(CheckinResult.WRONG_EVENT)
        else:
            verdicts.append(booking.refusal(code))
            if verdicts[-1] is None:
                seats[index] = [(booking.booking_id, seat) for seat in booking.seats_of(code)]
    upload = await _record_earliest(session, principal, batch, seats)
    answers: list[OfflineScanOut] = []
    for index, (scan, code, verdict) in enumerate(zip(batch.scans, codes, verdicts, strict=True)):
        checked_in_at, conflict, winner = None, False, None
        if verdict is None:
            verdict, checked_in_at, conflict, winner = upload.outcome(index)
        answers.append(
            OfflineScanOut(
                code=scan.code,
                result=verdict,
                booking_id=code.booking_id if code else None,
                seat_id=code.seat_id if code else None,
                checked_in_at=checked_in_at,
                conflict=conflict,
                winner=winner,
            )
        )
    records = [
        ScanRecord(batch.event_id, code, answer.result, scan.scanned_at, scan.device)
        for scan, code, answer in zip(batch.scans, codes, answers, strict=True)
    ]
    await _log_scans(session, principal, records, offline=True, now=now)
    return CheckinBatchOut(event_id=batch.event_id, scans=answers)


def _refuse_unbounded(batch: CheckinBatch, now: datetime) -> None:
    if len(batch.scans) > MAX_SCANS_PER_BATCH:
        raise TooManyScans(
            f"at most {MAX_SCANS_PER_BATCH:,} scans per upload (this one has "
            f"{len(batch.scans):,}): send the rest in another",
            details={"max_scans": MAX_SCANS_PER_BATCH},
        )
    latest = now + SCAN_CLOCK_SKEW
    future = [index for index, scan in enumerate(batch.scans) if scan.scanned_at > latest]
    if future:
        raise ScanFromTheFuture(
            f"{len(future)} scan(s) dated after now: set the door's clock and upload again",
            details={"scans": future[:100]},
        )


async def _record_earliest(
    session: AsyncSession,
    principal: Principal,
    batch: CheckinBatch,
    seats: dict[int, list[SeatKey]],
) -> _Upload:
    """Write each seat's earliest scan of the upload where it is earlier than the seat's
    check-in (or the seat has none), in one statement; then read every seat's time."""
    earliest: dict[SeatKey, int] = {}
    for index, keys in seats.items():
        for seat in keys:
            known = earliest.get(seat)
            if known is None or batch.scans[index].scanned_at < batch.scans[known].scanned_at:
                earliest[seat] = index
    scans_of_seat = Counter(seat for keys in seats.values() for seat in keys)
    claimed = sorted(earliest)  # one lock order for every writer
    if not claimed:
        return _Upload(seats, earliest, {}, {}, scans_of_seat)
    claims = {"booking_ids": [b for b, _ in claimed], "seat_ids": [s for _, s in claimed]}
    written_rows = await session.execute(
        _CHECK_IN_EARLIEST,
        {
            **claims,
            "by": principal.user_id,
            "times": [batch.scans[earliest[seat]].scanned_at for seat in claimed],
            "devices": [batch.scans[earliest[seat]].device for seat in claimed],
        },
    )
    written = {(row.booking_id, row.seat_id): row.inserted for row in written_rows}
    times = await session.execute(_CHECKED_IN_AT, claims)
    checked_in_at = {(row.booking_id, row.seat_id): row.checked_in_at for row in times}
    return _Upload(seats, earliest, written, checked_in_at, scans_of_seat)


# -- what the organizer sees ---------------------------------------------------------------


_STATS = text(
    """
    SELECT count(*) AS sold, count(c.booking_id) AS checked_in
    FROM booking_seats s
    LEFT JOIN ticket_checkins c ON c.booking_id = s.booking_id AND c.seat_id = s.seat_id
    WHERE s.event_id = :event_id AND s.status = 'confirmed'
    """
)


async def checkin_stats(
    session: AsyncSession, events: EventsApi, principal: Principal, event_id: int
) -> CheckinStats:
    """Seats checked in of the seats sold (both of confirmed bookings)."""
    if not await _runs_door(session, events, principal, event_id):
        raise Forbidden(_NOT_YOURS)
    row = (await session.execute(_STATS, {"event_id": event_id})).one()
    return CheckinStats(event_id=event_id, checked_in=row.checked_in, sold=row.sold)


_DOOR_LIST = text(
    """
    SELECT b.id AS booking_id, b.status, s.seat_id, c.checked_in_at
    FROM bookings b
    JOIN booking_seats s ON s.booking_id = b.id
    LEFT JOIN ticket_checkins c ON c.booking_id = s.booking_id AND c.seat_id = s.seat_id
    WHERE b.event_id = :event_id
      AND (b.status = 'confirmed' OR (b.status = 'cancelled' AND b.confirmed_at IS NOT NULL))
    ORDER BY b.id, s.id
    """
)


async def door_list(
    session: AsyncSession,
    events: EventsApi,
    principal: Principal,
    event_id: int,
    secret: str,
) -> DoorList:
    """Every code of the event's paid bookings, for a door that checks tickets offline:
    `valid` ones with their check-in time so far, and those of bookings cancelled since."""
    if not await _runs_door(session, events, principal, event_id):
        raise Forbidden(_NOT_YOURS)
    generated_at = utcnow()
    rows = (await session.execute(_DOOR_LIST, {"event_id": event_id})).all()
    tickets: list[DoorTicket] = []
    bookings: dict[int, DoorBookingCode] = {}
    for row in rows:
        status: Literal["valid", "cancelled"] = (
            "valid" if row.status == BookingStatus.CONFIRMED else "cancelled"
        )
        tickets.append(
            DoorTicket(
                code=sign_ticket_code(row.booking_id, event_id, row.seat_id, secret),
                booking_id=row.booking_id,
                seat_id=row.seat_id,
                status=status,
                checked_in_at=row.checked_in_at,
            )
        )
        booking = bookings.get(row.booking_id)
        if booking is None:
            booking = bookings[row.booking_id] = DoorBookingCode(
                code=sign_booking_code(row.booking_id, event_id, secret),
                booking_id=row.booking_id,
                seat_ids=[],
                status=status,
            )
        booking.seat_ids.append(row.seat_id)
    return DoorList(
        event_id=event_id,
        generated_at=generated_at,
        tickets=tickets,
        booking_codes=list(bookings.values()),
    )
