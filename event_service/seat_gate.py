"""The seat gate: Redis structures that decide, atomically, who may have which seat.

Every decision is one Lua script over the keys of one event (``event:{<id>}:...``, one
hash tag, so one Redis Cluster slot). Each script first purges expired holds, so a hold
that nobody releases still gives its seats back, and counters are derived from the sets
(``ZCARD``), never incremented on their own. PostgreSQL stays the truth about sales: when
Redis has lost an event's gate (no ready marker), it is rebuilt from PostgreSQL under a
lock before any hold is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Literal

from redis.exceptions import RedisError

from event_service.metrics import GATE_REBUILDS
from ticketing_common.errors import ServiceUnavailable
from ticketing_common.internal.errors import EventNotFound
from ticketing_common.redis import redis_guarded
from ticketing_common.seats import TICKET_CLASSES, TicketClass

logger = logging.getLogger("event_service.seat_gate")

REBUILD_LOCK_MS = 30_000
WAITLIST_LOCK_MS = 60_000
_NOT_LOADED = "not_loaded"
#: every "<event id>:<class>" whose free seats are kept for a waiting list (not hash-tagged:
#: only the waiting lists' loop reads it, to find the keeps it may end)
WAITLISTED_INDEX = "waitlists:kept"
_UNKEEP = """
local kept = redis.call('HGET', KEYS[1], ARGV[1])
if kept and tonumber(kept) < tonumber(ARGV[2]) then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
if not kept then
  return 1
end
return 0
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class GateUnavailable(ServiceUnavailable):
    """Redis cannot be reached: no hold can be decided now (reads fall back to PostgreSQL)."""

    def __init__(self) -> None:
        super().__init__("seat availability is unreachable right now; retry shortly")


#: Redis faults reported as :class:`GateUnavailable` (503), never as a 500
_redis_guarded = redis_guarded(GateUnavailable, "seat gate")


class GateNotReady(ServiceUnavailable):
    """The event's seat gate is being rebuilt (or Redis lost it mid-request): retry."""

    def __init__(self, event_id: int) -> None:
        super().__init__(f"seat availability of event {event_id} is being rebuilt; retry shortly")


@dataclass(frozen=True, slots=True)
class RestoredHold:
    """A live hold of a pending booking, as booking_db records it."""

    token: str
    seat_ids: Sequence[str]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class GateLayout:
    """What PostgreSQL knows: the seat layout and the sold seats with their tokens (and,
    for a rebuild, the holds of pending bookings to restore)."""

    seats_per_row: int
    capacity: Mapping[str, int]
    sold: Sequence[tuple[str, str]] = ()
    holds: Sequence[RestoredHold] = ()


# Yields the event's layout (None if there is no such event) while holding the event's row
# lock, so nothing can sell a seat between reading PostgreSQL and writing the gate.
LayoutSource = Callable[[int], AbstractAsyncContextManager[GateLayout | None]]
# The live holds of the event's pending bookings (booking_service knows them); asked
# before the row lock is taken, never while holding it.
HoldsSource = Callable[[int], Awaitable[Sequence[RestoredHold]]]


async def _no_holds(_: int) -> Sequence[RestoredHold]:
    return ()


HoldStatus = Literal[
    "held", "taken", "unknown", "short", "reserved", "token_in_use", "token_used", "too_late"
]
TokenStatus = Literal["held", "confirmed", "gone"]


@dataclass(frozen=True, slots=True)
class HoldReply:
    status: HoldStatus
    seat_ids: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
    available: int | None = None
    #: the event's edit version when the hold was taken (see ``cache.py``)
    event_version: str = ""
    #: ``reserved``: the class whose free seats its waiting list keeps
    ticket_class: str | None = None


@dataclass(frozen=True, slots=True)
class TokenState:
    status: TokenStatus
    seat_ids: list[str] = field(default_factory=list)
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ResizeReply:
    ok: bool
    layout_in_use: bool = False
    ticket_class: str | None = None
    taken: int = 0
    taken_beyond_cut: int = 0


@dataclass(frozen=True, slots=True)
class SeatMapUpdate:
    """What a seat map rendition at ``since`` needs to show the gate as it is (``version``).

    ``kind`` is ``same`` (nothing changed), ``changes`` (``changed`` maps each seat that
    changed since to its status now) or ``full`` (the layout, and every held and sold
    seat: no rendition was given, or the change log no longer reaches back to it).
    """

    kind: Literal["same", "changes", "full"]
    version: str
    held_count: int = 0
    sold_count: int = 0
    changed: Mapping[str, str] = field(default_factory=dict)
    seats_per_row: int = 0
    capacity: Mapping[str, int] = field(default_factory=dict)
    held: Sequence[str] = ()
    sold: Sequence[str] = ()


def event_prefix(event_id: int) -> str:
    return f"event:{{{event_id}}}:"


def event_version_key(event_id: int) -> str:
    """The event's edit version, bumped by every update (``cache.py`` owns it)."""
    return event_prefix(event_id) + "cache_version"


def gate_keys(event_id: int) -> list[str]:
    """The script keys, in the order the Lua prelude names them."""
    prefix = event_prefix(event_id)
    names = ("loaded", "holds", "hold_expiries", "hold_tokens", "confirmed", "sold")
    return [
        *(prefix + name for name in names),
        *(f"{prefix}available:{ticket_class}" for ticket_class in TICKET_CLASSES),
        event_version_key(event_id),
        prefix + "seat_version",
        prefix + "seat_changes",
        waitlisted_key(event_id),
    ]


def waitlisted_key(event_id: int) -> str:
    """The classes whose free seats are kept for their waiting list (``waitlist.py``)."""
    return event_prefix(event_id) + "waitlisted"


def _from_ms(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _layout_args(seats_per_row: int, capacity: Mapping[str, int]) -> list[int]:
    return [seats_per_row, *(capacity[c] for c in TICKET_CLASSES)]


class _Scripts:
    """The Lua scripts, registered once (EVALSHA, loaded on first NOSCRIPT)."""

    OPERATIONS = (
        "hold",
        "release",
        "confirm",
        "sell",
        "unsell",
        "availability",
        "seat_map",
        "resize",
        "rebuild",
    )

    def __init__(self, redis: Any) -> None:
        folder = resources.files("event_service") / "lua"
        prelude = (folder / "prelude.lua").read_text()
        self.by_name = {
            name: redis.register_script(prelude + "\n" + (folder / f"{name}.lua").read_text())
            for name in self.OPERATIONS
        }
        self.unlock = redis.register_script(_UNLOCK)
        self.unkeep = redis.register_script(_UNKEEP)


class SeatGate:
    def __init__(
        self,
        redis: Any,
        layout_source: LayoutSource,
        *,
        holds_source: HoldsSource = _no_holds,
        rebuild_wait_seconds: float = 10.0,
    ) -> None:
        self._redis = redis
        self._layout_source = layout_source
        self._holds_source = holds_source
        self._rebuild_wait_seconds = rebuild_wait_seconds
        self._scripts = _Scripts(redis)

    def use_holds_source(self, holds_source: HoldsSource) -> None:
        """Ask another source for the holds a rebuild restores (tests route it in-process)."""
        self._holds_source = holds_source

    # -- holds ------------------------------------------------------------------------

    @_redis_guarded
    async def hold(
        self,
        event_id: int,
        *,
        token: str,
        ttl_ms: int,
        fingerprint: str,
        seat_ids: Sequence[str] = (),
        ticket_class: TicketClass | None = None,
        count: int = 0,
        for_waitlist: bool = False,
        not_after_ms: int | None = None,
    ) -> HoldReply:
        """All-or-nothing hold of named seats, or of ``count`` seats of ``ticket_class``;
        ``for_waitlist``: a waiting list's offer, which alone may take the seats a class
        with a waiting list keeps (any other hold of that class is ``reserved``);
        ``not_after_ms``: past it, by Redis's clock, nothing is held (``too_late``)."""
        timing = ttl_ms if not_after_ms is None else f"{ttl_ms},{not_after_ms}"
        if ticket_class is None:
            args: list[Any] = [token, timing, fingerprint, "seats", *seat_ids]
        else:
            mode = "offer" if for_waitlist else "count"
            args = [token, timing, fingerprint, mode, ticket_class, count]
        reply = await self._run_rebuilt("hold", event_id, args)
        status = reply[0]
        if status == "held":
            return HoldReply(
                "held", list(reply[3:]), expires_at=_from_ms(reply[1]), event_version=reply[2]
            )
        if status == "short":
            return HoldReply("short", available=int(reply[1]))
        if status == "reserved":
            return HoldReply("reserved", ticket_class=reply[1])
        return HoldReply(status, list(reply[1:]))

    @_redis_guarded
    async def release(self, event_id: int, token: str) -> tuple[int, bool]:
        """Give back the token's held seats: (seats released, token has confirmed seats)."""
        reply = await self._scripts.by_name["release"](keys=gate_keys(event_id), args=[token])
        return int(reply[0]), bool(reply[1])

    @_redis_guarded
    async def peek(self, event_id: int, token: str) -> TokenState:
        """The token's hold as it stands (rebuilding the gate first if Redis lost it)."""
        reply = await self._run_rebuilt("confirm", event_id, [token, "peek"])
        return self._token_state(reply)

    @_redis_guarded
    async def confirm(self, event_id: int, token: str) -> TokenState:
        """Turn the token's hold into sold seats; ``gone`` if it no longer holds them.

        Never rebuilds: the caller holds the event's row lock, which a rebuild needs.
        """
        reply = await self._run("confirm", event_id, [token, "confirm"], rebuild=False)
        if reply is None:
            raise GateNotReady(event_id)
        return self._token_state(reply)

    @staticmethod
    def _token_state(reply: list[Any]) -> TokenState:
        status = reply[0]
        if status == "held":
            return TokenState("held", list(reply[2:]), expires_at=_from_ms(reply[1]))
        if status == "confirmed":
            return TokenState("confirmed", list(reply[1:]))
        return TokenState("gone")

    # -- sales decided in PostgreSQL ----------------------------------------------------

    @_redis_guarded
    async def sell(self, event_id: int, token: str, seat_ids: Sequence[str]) -> list[str] | None:
        """Mark seats sold to ``token``; returns seats sold to another token (refused).

        None when the gate is not built: its rebuild will read the sale from PostgreSQL.
        """
        reply = await self._run("sell", event_id, [token, *seat_ids], rebuild=False)
        if reply is None:
            return None
        return list(reply[1:]) if reply[0] == "conflict" else []

    @_redis_guarded
    async def unsell(self, event_id: int, token: str, seat_ids: Sequence[str] = ()) -> int | None:
        """Put the token's sold seats back on sale; None when the gate is not built."""
        reply = await self._run("unsell", event_id, [token, *seat_ids], rebuild=False)
        return None if reply is None else int(reply[1])

    # -- reads ------------------------------------------------------------------------

    @_redis_guarded
    async def availability(self, event_id: int) -> dict[str, int] | None:
        """Free seats per class, or None when the gate is not built (no holds exist then)."""
        reply = await self._run("availability", event_id, [], rebuild=False)
        if reply is None:
            return None
        return dict(zip(TICKET_CLASSES, (int(n) for n in reply), strict=True))

    @_redis_guarded
    async def seat_map_update(self, event_id: int, since: str = "") -> SeatMapUpdate:
        """What a seat map rendered at seat version ``since`` ('' for none) lacks, after
        expired holds are purged (see ``lua/seat_map.lua``)."""
        reply = await self._run_rebuilt("seat_map", event_id, [since])
        kind, version = reply[0], reply[1]
        if kind == "same":
            return SeatMapUpdate("same", version)
        if kind == "changes":
            statuses = reply[4:]
            return SeatMapUpdate(
                "changes",
                version,
                held_count=int(reply[2]),
                sold_count=int(reply[3]),
                changed=dict(zip(statuses[::2], statuses[1::2], strict=True)),
            )
        held, sold = reply[6], reply[7]
        return SeatMapUpdate(
            "full",
            version,
            held_count=len(held),
            sold_count=len(sold),
            seats_per_row=int(reply[2]),
            capacity=dict(zip(TICKET_CLASSES, (int(n) for n in reply[3:6]), strict=True)),
            held=held,
            sold=sold,
        )

    # -- waiting lists ------------------------------------------------------------------

    @_redis_guarded
    async def keep_for_waitlist(self, event_id: int, ticket_class: str) -> None:
        """Keep the class's free seats for its waiting list's offers (see ``hold.lua``)."""
        now_ms = str(time.time_ns() // 1_000_000)
        await self._redis.hset(waitlisted_key(event_id), ticket_class, now_ms)
        await self._redis.sadd(WAITLISTED_INDEX, f"{event_id}:{ticket_class}")

    @_redis_guarded
    async def stop_keeping_for_waitlist(
        self, event_id: int, ticket_class: str, kept_before_ms: int
    ) -> bool:
        """Put the class's free seats on sale again, unless it was kept at or after
        ``kept_before_ms`` (a buyer joined while the caller was finding the list empty)."""
        stopped = await self._scripts.unkeep(
            keys=[waitlisted_key(event_id)], args=[ticket_class, kept_before_ms]
        )
        if stopped:
            await self._redis.srem(WAITLISTED_INDEX, f"{event_id}:{ticket_class}")
        return bool(stopped)

    @contextlib.asynccontextmanager
    async def offering_to_waitlist(self, event_id: int, ticket_class: str) -> AsyncIterator[bool]:
        """One replica at a time makes the class's offers (True for it), so entries are
        offered in order; the lock lapses after ``WAITLIST_LOCK_MS`` if its holder dies."""
        key = waitlisted_key(event_id) + f":offering:{ticket_class}"
        try:
            async with self._lock(key, WAITLIST_LOCK_MS) as locked:
                yield locked
        except RedisError as exc:
            raise GateUnavailable() from exc

    @_redis_guarded
    async def kept_for_waitlist(self, event_id: int) -> set[str]:
        """The event's classes whose free seats are kept for their waiting list."""
        classes = await self._redis.hkeys(waitlisted_key(event_id))
        return {c.decode() if isinstance(c, bytes) else str(c) for c in classes}

    @_redis_guarded
    async def kept_for_waitlists(self) -> set[tuple[int, str]]:
        """Every (event, class) whose free seats are kept for its waiting list."""
        members = await self._redis.smembers(WAITLISTED_INDEX)
        kept = set()
        for member in members:
            text = member.decode() if isinstance(member, bytes) else str(member)
            event_id, _, ticket_class = text.partition(":")
            kept.add((int(event_id), ticket_class))
        return kept

    # -- layout -----------------------------------------------------------------------

    @_redis_guarded
    async def build(self, event_id: int, layout: GateLayout, *, replace: bool = False) -> bool:
        """Write a gate from ``layout``: a new event's (``replace``), or a rebuild under the
        row lock, which leaves an existing gate as it is and then returns False."""
        mode = "replace" if replace else "if_missing"
        args: list[Any] = [mode, *_layout_args(layout.seats_per_row, layout.capacity)]
        args.append(len(layout.sold))
        for seat_id, token in layout.sold:
            args += [seat_id, token]
        for hold in layout.holds:
            args += [hold.token, int(hold.expires_at.timestamp() * 1000), ",".join(hold.seat_ids)]
        reply = await self._scripts.by_name["rebuild"](keys=gate_keys(event_id), args=args)
        return bool(reply[0] == "built")

    @_redis_guarded
    async def resize(
        self, event_id: int, seats_per_row: int, capacity: Mapping[str, int]
    ) -> ResizeReply:
        """Apply a new layout if no held or sold seat is cut; never rebuilds (row lock)."""
        args = _layout_args(seats_per_row, capacity)
        reply = await self._run("resize", event_id, args, rebuild=False)
        if reply is None:
            raise GateNotReady(event_id)
        if reply[0] == "ok":
            return ResizeReply(ok=True)
        if reply[0] == "layout_in_use":
            return ResizeReply(ok=False, layout_in_use=True)
        return ResizeReply(
            ok=False, ticket_class=reply[1], taken=int(reply[2]), taken_beyond_cut=int(reply[3])
        )

    @_redis_guarded
    async def ensure_loaded(self, event_id: int) -> bool:
        """Make sure the gate exists; False if PostgreSQL has no such event.

        One caller (across all replicas) rebuilds under a Redis lock; the others wait for
        the ready marker, which the rebuild script writes atomically with the gate.
        """
        loaded_key = gate_keys(event_id)[0]
        lock_key = event_prefix(event_id) + "rebuild_lock"
        deadline = time.monotonic() + self._rebuild_wait_seconds
        while True:
            if await self._redis.exists(loaded_key):
                return True
            async with self._lock(lock_key, REBUILD_LOCK_MS) as locked:
                if locked:
                    return await self._rebuild(event_id)
            if time.monotonic() > deadline:
                raise GateNotReady(event_id)
            await asyncio.sleep(0.02)

    @contextlib.asynccontextmanager
    async def _lock(self, key: str, ttl_ms: int) -> AsyncIterator[bool]:
        """``key`` taken as a lock for at most ``ttl_ms`` (False: another holder has it),
        and given back at the end by its owner only."""
        owner = uuid.uuid4().hex
        locked = bool(await self._redis.set(key, owner, nx=True, px=ttl_ms))
        try:
            yield locked
        finally:
            if locked:
                await self._scripts.unlock(keys=[key], args=[owner])

    async def _rebuild(self, event_id: int) -> bool:
        async with self._layout_source(event_id) as layout:
            if layout is None:
                return False  # no such event: nobody to ask about its holds
        holds = await self._holds_source(event_id)
        async with self._layout_source(event_id) as layout:
            if layout is None:
                return False
            layout = dataclasses.replace(layout, holds=holds)
            if not await self.build(event_id, layout):
                return True
        GATE_REBUILDS.inc()
        logger.warning(
            "seat gate rebuilt from PostgreSQL",
            extra={
                "event_id": event_id,
                "sold_seats": len(layout.sold),
                "holds_restored": len(holds),
            },
        )
        return True

    async def _run_rebuilt(self, name: str, event_id: int, args: list[Any]) -> list[Any]:
        reply = await self._run(name, event_id, args, rebuild=True)
        assert reply is not None
        return reply

    async def _run(
        self, name: str, event_id: int, args: list[Any], *, rebuild: bool
    ) -> list[Any] | None:
        """Run a script; with ``rebuild`` a missing gate is rebuilt first, else None."""
        script = self._scripts.by_name[name]
        keys = gate_keys(event_id)
        reply: list[Any] = await script(keys=keys, args=args)
        if reply and reply[0] == _NOT_LOADED:
            if not rebuild:
                return None
            if not await self.ensure_loaded(event_id):
                raise EventNotFound()
            reply = await script(keys=keys, args=args)
            if reply and reply[0] == _NOT_LOADED:
                raise GateNotReady(event_id)
        return reply
