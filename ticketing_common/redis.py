"""Redis client factory: one pooled client per process, single node or Redis Cluster."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from ticketing_common.settings import ServiceSettings


def create_redis(settings: ServiceSettings) -> Any:
    """Return ``Redis`` or ``RedisCluster`` (same command API) as the settings ask."""
    host, _, port = settings.redis_addr.partition(":")
    if settings.redis_cluster:
        return RedisCluster(host=host, port=int(port or 6379), decode_responses=True)
    return Redis(
        host=host,
        port=int(port or 6379),
        db=settings.redis_db,
        decode_responses=True,
        max_connections=64,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
    )
