"""Read-through caches for the public event reads, invalidated at once by an update.

An update, inside the organizer's transaction and before its commit, bumps a version key
and leaves a tombstone (:meth:`EventCache.invalidate`). While the tombstone lives readers
go to PostgreSQL and cache nothing, so a reader that saw the old row before the commit
cannot write it back, and a reader that loaded before the bump fails the version check
when it tries to write. After the commit the tombstone is lifted (:meth:`EventCache.settle`);
if that never happens it expires on its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cachetools import LRUCache
from redis.exceptions import RedisError

from event_service.schemas import EventListPage, EventRecord
from event_service.seat_gate import event_prefix, event_version_key
from ticketing_common.errors import ServiceUnavailable

logger = logging.getLogger("event_service.cache")
T = TypeVar("T")

TOMBSTONE = "-"
TOMBSTONE_SECONDS = 10
LIST_TAG = "events:{list}:"  # one slot for every list key, so they can be read together

# KEYS: value, version, tombstone; ARGV: version seen before loading, value, ttl seconds.
_STORE_IF_CURRENT = """
local version = redis.call('GET', KEYS[2]) or ''
if version ~= ARGV[1] or redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
# KEYS: version, tombstone; ARGV: tombstone ttl seconds, the new version (unique: never
# reused, not even after Redis lost the old one).
_INVALIDATE = """
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], '-', 'EX', ARGV[1])
return 1
"""


class _SingleFlight:
    """Concurrent cache misses for one key share one load: when a popular event's entry
    expires mid on-sale, each process asks PostgreSQL once, not once per request. Keys
    carry the cache version, so a load begun before an update is never handed to a
    caller that read the version after it."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    async def run(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        flight = self._inflight.get(key)
        if flight is None:
            flight = asyncio.ensure_future(load())
            self._inflight[key] = flight
            flight.add_done_callback(lambda _: self._inflight.pop(key, None))
        result: T = await asyncio.shield(flight)
        return result


def _event_keys(event_id: int) -> tuple[str, str]:
    return event_prefix(event_id) + "cache", event_version_key(event_id)


class EventCache:
    def __init__(self, redis: Any, *, event_ttl: int, list_ttl: int) -> None:
        self._redis = redis
        self._event_ttl = event_ttl
        self._list_ttl = list_ttl
        self._store = redis.register_script(_STORE_IF_CURRENT)
        self._invalidate = redis.register_script(_INVALIDATE)
        self._loads = _SingleFlight()
        # Events as last read from the Redis cache, with the version they were cached at:
        # a caller that learned the current version elsewhere (the hold script reads it)
        # needs no round trip at all.
        self._parsed: LRUCache[int, tuple[str, EventRecord]] = LRUCache(maxsize=4096)

    def last_known(self, event_id: int) -> EventRecord | None:
        """The event as this process last read it, whatever its version now (a hint: the
        hold's answer names the version that decides)."""
        entry = self._parsed.get(event_id)
        return entry[1] if entry is not None else None

    def at_version(self, event_id: int, version: str) -> EventRecord | None:
        """The event as cached at ``version``, if this process has read it since."""
        entry = self._parsed.get(event_id)
        return entry[1] if version and entry is not None and entry[0] == version else None

    async def event(
        self, event_id: int, load: Callable[[], Awaitable[EventRecord | None]]
    ) -> EventRecord | None:
        """The cached event, or ``load()`` (run once for concurrent misses) cached now.

        ``load`` must use a session of its own: callers that join a load share its task.
        """
        key, version_key = _event_keys(event_id)
        try:
            cached, version = await self._redis.mget(key, version_key)
        except RedisError as exc:
            logger.warning("event cache unreachable, reading PostgreSQL: %s", exc)
            return await load()
        if cached is not None and cached != TOMBSTONE:
            # A cached value is never older than its version: every edit sets a new version
            # and replaces the value with a tombstone in one script (``_INVALIDATE``).
            if version is None:
                version = await self._first_version(version_key)
            known = self.at_version(event_id, version)
            if known is None:
                known = EventRecord.model_validate_json(cached)
                self._parsed[event_id] = (version, known)
            return known
        if cached == TOMBSTONE:
            return await load()
        record = await self._loads.run(f"{key}:{version}", load)
        if record is not None:
            # The event's own key doubles as its tombstone: SET only where it is absent.
            await self._store_quietly(
                [key, version_key, key], version, record.model_dump_json(), self._event_ttl
            )
        return record

    async def event_list(
        self, query: dict[str, Any], load: Callable[[], Awaitable[EventListPage]]
    ) -> EventListPage:
        """A cached page of the event list, or ``load()`` (shared like :meth:`event`)."""
        version_key, tombstone_key = LIST_TAG + "version", LIST_TAG + "dirty"
        digest = hashlib.sha256(repr(sorted(query.items())).encode()).hexdigest()[:32]
        try:
            version, dirty = await self._redis.mget(version_key, tombstone_key)
            page_key = f"{LIST_TAG}page:{version or 0}:{digest}"
            cached = None if dirty is not None else await self._redis.get(page_key)
        except RedisError as exc:
            logger.warning("event list cache unreachable, reading PostgreSQL: %s", exc)
            return await load()
        if cached is not None:
            return EventListPage.model_validate_json(cached)
        if dirty is not None:
            return await load()
        page = await self._loads.run(page_key, load)
        await self._store_quietly(
            [page_key, version_key, tombstone_key], version, page.model_dump_json(), self._list_ttl
        )
        return page

    async def _store_quietly(
        self, keys: list[str], version: str | None, value: str, ttl: int
    ) -> None:
        """Cache ``value`` unless the version moved or a tombstone stands; a Redis fault
        only costs the caching."""
        try:
            await self._store(keys=keys, args=[version or "", value, ttl])
        except RedisError as exc:
            logger.warning("event cache unreachable, not caching: %s", exc)

    async def _first_version(self, version_key: str) -> str:
        """Give an event that has none (Redis lost it) a version; edits replace it."""
        await self._redis.set(version_key, uuid.uuid4().hex, nx=True)
        version: str = await self._redis.get(version_key) or ""
        return version

    async def invalidate(self, event_id: int | None) -> None:
        """Call inside the writing transaction, before it commits (``None``: only the lists).

        If Redis cannot be told, the write is refused (503): committing it would leave the
        caches serving the old event until their TTL.
        """
        try:
            await self._invalidate(
                keys=[LIST_TAG + "version", LIST_TAG + "dirty"],
                args=[TOMBSTONE_SECONDS, uuid.uuid4().hex],
            )
            if event_id is not None:
                key, version_key = _event_keys(event_id)
                await self._invalidate(
                    keys=[version_key, key], args=[TOMBSTONE_SECONDS, uuid.uuid4().hex]
                )
        except RedisError as exc:
            raise ServiceUnavailable("the event cache is unreachable; retry shortly") from exc

    async def settle(self, event_id: int | None) -> None:
        """Call after the writing transaction committed: caching may resume (if this
        fails, the tombstones expire on their own)."""
        keys = [LIST_TAG + "dirty"]
        if event_id is not None:
            keys.append(_event_keys(event_id)[0])
        try:
            for key in keys:  # one by one: the keys live in different cluster slots
                await self._redis.delete(key)
        except RedisError as exc:
            logger.warning("event cache tombstones left to expire: %s", exc)
