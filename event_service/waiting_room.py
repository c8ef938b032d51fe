"""The on-sale's waiting room (issue 20): a fair queue in Redis, admission at a set rate,
and a signed pass that lets an admitted buyer book.

An organizer turns the room on per event (``queue_enabled``, ``onsale_at``,
``queue_admit_per_minute``). Each buyer has one place per event in a sorted set:

* a buyer who joins before ``onsale_at`` gets a random score in [0, 1): the early arrivals
  are shuffled, and nobody gains by arriving first or by refreshing;
* a buyer who joins later gets ``1 + n`` for the n-th late arrival: they queue in order,
  after every early one.

A place is its rank (``ZRANK``, O(log n)): nothing scans the queue. Admission is a cursor:
ranks below it are admitted. Every ``tick_seconds`` each replica runs :data:`_TICK`, which
moves the cursor by the admissions earned since the last tick (``rate * elapsed``, by
Redis's clock), so however many replicas tick, the room admits at the rate, once. The
queue, the cursor and every admission time live in Redis, so a restart of the service
keeps the order.

An admitted buyer reads a pass from ``GET /api/events/{id}/queue/me``: a JWT bound to the
account and the event, valid ``pass_ttl_seconds`` from the admission. The hold refuses a
booking of the event without one (428) or with another's or a lapsed one (403), and the
per-buyer limits still apply to what the pass buys. A buyer whose pass lapsed may join
again, at the end. Once the event is sold out (every seat sold, none held) the room
closes, and everyone still waiting reads ``sold_out``.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import jwt
from fastapi import FastAPI
from sqlalchemy import text

from event_service import metrics
from event_service.errors import QueueNotEnabled, QueuePassInvalid, QueuePassRequired
from event_service.resources import EventResources, resources_of
from event_service.schemas import EventRecord
from event_service.service import event_record
from ticketing_common.background import periodic_lifecycle
from ticketing_common.errors import DomainError, ServiceUnavailable
from ticketing_common.internal.errors import EventNotFound
from ticketing_common.redis import redis_guarded
from ticketing_common.seats import TICKET_CLASSES
from ticketing_common.security import ALGORITHM

logger = logging.getLogger("event_service.waiting_room")

QueueState = Literal["waiting", "queued", "admitted", "expired", "sold_out"]

PASS_TYPE = "queue_pass"  # noqa: S105 - a token type, not a secret
PASS_AUDIENCE = "queue-pass"  # noqa: S105
#: the Redis set of events whose room may admit someone (the ticks' work list)
ROOMS_KEY = "wr:rooms"
#: at most this many admissions per tick, whatever the rate and the time since the last
MAX_ADMITTED_PER_TICK = 10_000

# KEYS: queue, late arrivals' counter, join times, admission times, members by user, cursor,
#       closed
# ARGV: user id, on-sale (ms, or -1), a random score in [0, 1), pass ttl (ms), join (0/1)
# -> {new, member's rank (-1 if none), cursor, joined ms, admitted ms (or -1), now ms,
#     queue length, closed (0/1)}
_PLACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local user = ARGV[1]
local member = redis.call('HGET', KEYS[5], user)
local cursor = tonumber(redis.call('GET', KEYS[6]) or '0')
local rank = -1
if member then
  rank = redis.call('ZRANK', KEYS[1], member)
end
local new = 0
if ARGV[5] == '1' then
  local lapsed = false
  if member and rank < cursor then
    local admitted = tonumber(redis.call('HGET', KEYS[4], member) or '-1')
    lapsed = admitted >= 0 and now > admitted + tonumber(ARGV[4])
  end
  if not member or lapsed then
    local onsale = tonumber(ARGV[2])
    local score
    if onsale >= 0 and now < onsale then
      score = tonumber(ARGV[3])
    else
      score = 1 + redis.call('INCR', KEYS[2])
    end
    if member then
      member = user .. ':' .. redis.call('INCR', KEYS[2])
    else
      member = user
    end
    redis.call('ZADD', KEYS[1], score, member)
    redis.call('HSET', KEYS[5], user, member)
    redis.call('HSET', KEYS[3], member, now)
    rank = redis.call('ZRANK', KEYS[1], member)
    new = 1
  end
end
local closed = redis.call('EXISTS', KEYS[7])
if not member then
  return {0, -1, cursor, -1, -1, now, redis.call('ZCARD', KEYS[1]), closed}
end
local joined = tonumber(redis.call('HGET', KEYS[3], member) or '-1')
local admitted = tonumber(redis.call('HGET', KEYS[4], member) or '-1')
return {new, rank, cursor, joined, admitted, now, redis.call('ZCARD', KEYS[1]), closed}
"""

# KEYS: queue, cursor, admission times, last tick (ms), fractional credit
# ARGV: on-sale (ms, or -1), admissions per minute, most per tick, paused (0/1)
# -> {admitted now, cursor, queue length}
_TICK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local onsale = tonumber(ARGV[1])
local cursor = tonumber(redis.call('GET', KEYS[2]) or '0')
local total = redis.call('ZCARD', KEYS[1])
if onsale >= 0 and now < onsale then
  return {0, cursor, total}
end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then
  -- nothing to sell right now (every seat held or sold): admit nobody, earn nothing
  redis.call('SET', KEYS[5], '0')
  redis.call('SET', KEYS[4], now)
  return {0, cursor, total}
end
local last = redis.call('GET', KEYS[4])
local credit
if last then
  credit = tonumber(redis.call('GET', KEYS[5]) or '0')
    + (now - tonumber(last)) * tonumber(ARGV[2]) / 60000
else
  credit = 1  -- the sale opens: the first in line goes in at once
end
local waiting = total - cursor
local n = math.floor(credit)
if n > tonumber(ARGV[3]) then
  n = tonumber(ARGV[3])
  credit = n
end
if n >= waiting then
  -- nobody banks admissions while the queue is empty
  n = waiting
  credit = n
end
if n > 0 then
  local members = redis.call('ZRANGE', KEYS[1], cursor, cursor + n - 1)
  for _, member in ipairs(members) do
    redis.call('HSET', KEYS[3], member, now)
  end
  cursor = cursor + n
  redis.call('SET', KEYS[2], cursor)
end
redis.call('SET', KEYS[5], tostring(credit - n))
redis.call('SET', KEYS[4], now)
return {n, cursor, total}
"""


_RANDOM = secrets.SystemRandom()


class RoomUnavailable(ServiceUnavailable):
    """Redis cannot be reached: no place can be taken or read now (503, retry)."""

    def __init__(self) -> None:
        super().__init__("the waiting room cannot answer right now")


_guarded = redis_guarded(RoomUnavailable, "waiting room")


def _keys(event_id: int) -> dict[str, str]:
    prefix = f"wr:{{{event_id}}}:"  # one hash slot per event
    return {
        name: prefix + name
        for name in (
            "queue",
            "late",
            "joined",
            "admitted",
            "members",
            "cursor",
            "last_tick",
            "credit",
            "closed",
        )
    }


def _ms(moment: datetime | None) -> int:
    return -1 if moment is None else int(moment.timestamp() * 1000)


def _at(ms: int) -> datetime | None:
    return None if ms < 0 else datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class Place:
    """A buyer's place in an event's room, as its answer shows it."""

    event_id: int
    status: QueueState
    position: int | None
    estimated_wait_s: float | None
    onsale_at: datetime | None
    joined_at: datetime | None
    admitted_at: datetime | None
    queue_pass: str | None
    pass_expires_at: datetime | None
    poll_after_s: float
    #: True when this call put the buyer in the queue
    new: bool = False


@dataclass(frozen=True, slots=True)
class RoomStats:
    event_id: int
    length: int
    admitted: int
    admit_per_minute: int
    status: Literal["before_onsale", "open", "sold_out"]

    @property
    def waiting(self) -> int:
        return self.length - self.admitted


class WaitingRoom:
    """The rooms of every event (one per app), on the service's Redis."""

    def __init__(self, redis: Any, *, secret: str, pass_ttl_seconds: int, default_rate: int):
        self._redis = redis
        self._secret = secret
        self._pass_ttl_ms = pass_ttl_seconds * 1000
        self._default_rate = default_rate
        self._place = redis.register_script(_PLACE)
        self._tick = redis.register_script(_TICK)

    def rate(self, record: EventRecord) -> int:
        return record.queue_admit_per_minute or self._default_rate

    # -- a buyer ----------------------------------------------------------------------

    async def join(self, record: EventRecord, user_id: int) -> Place:
        """Take a place (or keep the one held); join again once a pass lapsed."""
        if not record.queue_enabled:
            raise QueueNotEnabled()
        place = await self._read(record, user_id, join=True)
        if place.new:
            metrics.QUEUE_JOINS.inc()
            await self.register(record.id)
        return place

    @_guarded
    async def clear(self, event_id: int) -> None:
        """A new event starts with an empty room, whatever an earlier event of the same id
        left in Redis (a database recreated beside a Redis that was not)."""
        await self._redis.delete(*_keys(event_id).values())

    @_guarded
    async def register(self, event_id: int) -> None:
        """The room is on: every replica's ticks look after it from now on."""
        await self._redis.sadd(ROOMS_KEY, event_id)

    async def place(self, record: EventRecord, user_id: int) -> Place | None:
        """The buyer's place, or None if the buyer never joined."""
        if not record.queue_enabled:
            raise QueueNotEnabled()
        place = await self._read(record, user_id, join=False)
        return None if place.joined_at is None else place

    @_guarded
    async def _read(self, record: EventRecord, user_id: int, *, join: bool) -> Place:
        keys = _keys(record.id)
        new, rank, cursor, joined, admitted, now, _length, closed = await self._place(
            keys=[
                keys["queue"],
                keys["late"],
                keys["joined"],
                keys["admitted"],
                keys["members"],
                keys["cursor"],
                keys["closed"],
            ],
            args=[
                user_id,
                _ms(record.onsale_at),
                _RANDOM.random(),
                self._pass_ttl_ms,
                1 if join else 0,
            ],
        )
        return self._answer(
            record,
            user_id,
            new=bool(new),
            rank=int(rank),
            cursor=int(cursor),
            joined=int(joined),
            admitted=int(admitted),
            now=int(now),
            closed=bool(closed),
        )

    def _answer(
        self,
        record: EventRecord,
        user_id: int,
        *,
        new: bool,
        rank: int,
        cursor: int,
        joined: int,
        admitted: int,
        now: int,
        closed: bool,
    ) -> Place:
        def place(status: QueueState, poll_after_s: float, **fields: Any) -> Place:
            return Place(
                event_id=record.id,
                status=status,
                position=fields.get("position"),
                estimated_wait_s=fields.get("estimated_wait_s"),
                onsale_at=record.onsale_at,
                joined_at=_at(joined),
                admitted_at=fields.get("admitted_at"),
                queue_pass=fields.get("queue_pass"),
                pass_expires_at=fields.get("pass_expires_at"),
                poll_after_s=poll_after_s,
                new=new,
            )

        if rank < 0:
            return place("waiting", 5.0)
        if rank < cursor and admitted >= 0:
            expires = admitted + self._pass_ttl_ms
            lapsed = now > expires
            return place(
                "expired" if lapsed else "admitted",
                30.0,
                estimated_wait_s=None if lapsed else 0.0,
                admitted_at=_at(admitted),
                queue_pass=None if lapsed else self._issue(user_id, record.id, admitted, expires),
                pass_expires_at=_at(expires),
            )
        position = rank - cursor + 1
        if closed:
            return place("sold_out", 60.0, position=position)
        onsale = _ms(record.onsale_at)
        before_onsale = max(0.0, (onsale - now) / 1000) if onsale >= 0 else 0.0
        wait = before_onsale + position * 60.0 / self.rate(record)
        return place(
            "waiting" if before_onsale > 0 else "queued",
            # half the estimated wait: a buyer far back asks a few times in all, one about
            # to go in every second (the estimate is close: scripts/bench row 6); spread by
            # a fifth either way, so buyers who joined together do not poll in waves
            round(min(60.0, max(1.0, wait / 2)) * _RANDOM.uniform(0.8, 1.2), 1),
            position=position,
            estimated_wait_s=round(wait, 1),
        )

    # -- the pass -----------------------------------------------------------------------

    def _issue(self, user_id: int, event_id: int, admitted_ms: int, expires_ms: int) -> str:
        """The same pass for the same admission, whenever it is asked for."""
        claims = {
            "type": PASS_TYPE,
            "aud": PASS_AUDIENCE,
            "sub": str(user_id),
            "event_id": event_id,
            "iat": admitted_ms // 1000,
            "exp": math.ceil(expires_ms / 1000),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def check_pass(self, record: EventRecord, user_id: int | None, queue_pass: str | None) -> None:
        """Refuse a booking of a room's event without a valid pass of this buyer's."""
        refused = self.refusal(record, user_id, queue_pass)
        if refused is not None:
            reason, error = refused
            metrics.QUEUE_PASS_REFUSALS.labels(reason).inc()
            raise error

    def refusal(
        self, record: EventRecord, user_id: int | None, queue_pass: str | None
    ) -> tuple[str, DomainError] | None:
        """Why the pass does not let this buyer book this event (None: it does)."""
        if not record.queue_enabled:
            return None
        if not queue_pass:
            return "missing", QueuePassRequired()
        try:
            claims = jwt.decode(
                queue_pass,
                self._secret,
                algorithms=[ALGORITHM],
                audience=PASS_AUDIENCE,
                options={"require": ["exp", "sub", "type", "event_id"]},
            )
        except jwt.ExpiredSignatureError:
            return "expired", QueuePassInvalid("the queue pass has lapsed: join the queue again")
        except jwt.PyJWTError:
            return "invalid", QueuePassInvalid()
        if (
            claims.get("type") != PASS_TYPE
            or claims.get("event_id") != record.id
            or user_id is None
            or claims.get("sub") != str(user_id)
        ):
            return "foreign", QueuePassInvalid()
        return None

    # -- the organizer and the ticks ----------------------------------------------------

    @_guarded
    async def stats(self, record: EventRecord) -> RoomStats:
        keys = _keys(record.id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys["queue"])
            pipe.get(keys["cursor"])
            pipe.get(keys["closed"])
            length, cursor, closed = await pipe.execute()
        opened = record.onsale_at is None or record.onsale_at <= datetime.now(UTC)
        return RoomStats(
            event_id=record.id,
            length=int(length),
            admitted=min(int(cursor or 0), int(length)),
            admit_per_minute=self.rate(record),
            status="sold_out" if closed else ("open" if opened else "before_onsale"),
        )

    async def tick(self, record: EventRecord, *, paused: bool = False) -> tuple[int, int]:
        """Admit what the rate has earned since the last tick (nobody while ``paused``:
        no seat is free); returns how many, and how many still wait."""
        keys = _keys(record.id)
        admitted, cursor, length = await self._tick(
            keys=[
                keys["queue"],
                keys["cursor"],
                keys["admitted"],
                keys["last_tick"],
                keys["credit"],
            ],
            args=[
                _ms(record.onsale_at),
                self.rate(record),
                MAX_ADMITTED_PER_TICK,
                1 if paused else 0,
            ],
        )
        metrics.QUEUE_ADMITTED.inc(int(admitted))
        return int(admitted), max(0, int(length) - int(cursor))

    async def close(self, event_id: int) -> None:
        """The event sold out: everyone still waiting reads ``sold_out``; no more ticks."""
        keys = _keys(event_id)
        await self._redis.set(keys["closed"], "sold_out")
        await self._redis.srem(ROOMS_KEY, event_id)

    async def rooms(self) -> list[int]:
        return sorted(int(member) for member in await self._redis.smembers(ROOMS_KEY))

    async def forget(self, event_id: int) -> None:
        await self._redis.srem(ROOMS_KEY, event_id)


async def admit_once(app: FastAPI) -> int:
    """One tick of every open room; returns how many buyers were admitted."""
    resources = resources_of(app)
    room = resources.waiting_room
    admitted = waiting = 0
    for event_id in await room.rooms():
        try:
            record = await _record(resources, event_id)
        except Exception:
            logger.exception("waiting room tick skipped", extra={"event_id": event_id})
            continue
        if record is None or not record.queue_enabled:
            await room.forget(event_id)
            continue
        available = await resources.gate.availability(record.id)
        nothing_free = available is not None and not any(available.values())
        if nothing_free and await _all_sold(resources, record):
            await room.close(event_id)
            logger.info("waiting room closed: sold out", extra={"event_id": event_id})
            continue
        # Every seat held (not all paid yet): admitting more would only earn them 409s; the
        # room waits for holds to lapse or be paid.
        admitted_now, still_waiting = await room.tick(record, paused=nothing_free)
        admitted += admitted_now
        waiting += still_waiting
    metrics.QUEUE_WAITING.set(waiting)
    return admitted


async def _record(resources: EventResources, event_id: int) -> EventRecord | None:
    try:
        return await event_record(resources, event_id)
    except EventNotFound:
        return None


async def _all_sold(resources: EventResources, record: EventRecord) -> bool:
    """Every seat sold, as PostgreSQL records sales: the room has nothing more to offer."""
    async with resources.sessionmaker() as session:
        row = (await session.execute(_SOLD, {"event_id": record.id})).one_or_none()
    if row is None:
        return False
    sold = dict(zip(TICKET_CLASSES, row, strict=True))
    return all(sold[c] >= n for c, n in record.capacity().items())


_SOLD = text("SELECT sold_normal, sold_vip, sold_vvip FROM events WHERE id = :event_id")


def _interval(app: FastAPI) -> float:
    return float(resources_of(app).settings.queue_tick_seconds)


#: every tick, in every replica (the tick script makes the rate hold however many run)
admission_lifecycle = periodic_lifecycle(admit_once, name="waiting-room", interval=_interval)
