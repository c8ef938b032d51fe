"""Redis client factory: one pooled client per process, single node or Redis Cluster."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ticketing_common.settings import ServiceSettings

logger = logging.getLogger("ticketing.redis")

_Method = TypeVar("_Method", bound=Callable[..., Awaitable[Any]])

MAX_CONNECTIONS = 64
POOL_WAIT_SECONDS = 5
# redis-py's cluster client has no blocking pool: past this many connections to one node
# a command fails at once, so the bound sits well above any burst one process sees.
CLUSTER_MAX_CONNECTIONS_PER_NODE = 1024


def create_redis(settings: ServiceSettings) -> Any:
    """Return ``Redis`` or ``RedisCluster`` (same command API) as the settings ask.

    The single-node pool is a blocking one: under a burst (an on-sale sends hundreds of
    requests into one process at once) a command waits up to ``POOL_WAIT_SECONDS`` for a
    free connection instead of failing with "Too many connections".
    """
    host, _, port = settings.redis_addr.partition(":")
    if settings.redis_cluster:
        return RedisCluster(
            host=host,
            port=int(port or 6379),
            decode_responses=True,
            max_connections=CLUSTER_MAX_CONNECTIONS_PER_NODE,
            retry=reconnect_once(),
            retry_on_error=[RedisConnectionError],
        )
    pool = BlockingConnectionPool(
        host=host,
        port=int(port or 6379),
        db=settings.redis_db,
        decode_responses=True,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_SECONDS,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        retry=reconnect_once(),
        retry_on_error=[RedisConnectionError],
    )
    return Redis.from_pool(pool)


def reconnect_once() -> Retry:
    """A command that meets a connection Redis closed (a restart, a failover) runs once
    more on a fresh one instead of failing its request.

    Safe for what the services send: reads, the seat gate's scripts (keyed by hold token,
    so a repeat is the same decision), cache writes and deletes; a counter bumped twice in
    such a rare moment only makes a rate limit a little stricter.
    """
    return Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2)


def redis_guarded(unavailable: Callable[[], Exception], what: str) -> Callable[[_Method], _Method]:
    """A decorator reporting a Redis fault in an async method as ``unavailable()`` (a 503
    the caller can retry), never as a 500, with a warning naming ``what`` was unreachable."""

    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except RedisError as exc:
                logger.warning("%s unreachable: %s", what, exc)
                raise unavailable() from exc

        return cast(_Method, guarded)

    return decorate
