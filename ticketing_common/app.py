"""The application factory every service is built with."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI

from ticketing_common.admission import AdmissionMiddleware
from ticketing_common.db import create_engine, create_sessionmaker
from ticketing_common.errors import install_error_handlers
from ticketing_common.health import ReadinessCheck, health_router
from ticketing_common.http_client import InternalClient
from ticketing_common.logs import RequestIdMiddleware, configure_logging
from ticketing_common.metrics import MetricsMiddleware, metrics_router
from ticketing_common.redis import create_redis
from ticketing_common.security import RedisAccessRevocation
from ticketing_common.settings import ServiceSettings

Lifecycle = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_service_app(
    *,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    description: str = "",
    lifecycles: Sequence[Lifecycle] = (),
    extra_checks: dict[str, ReadinessCheck] | None = None,
    state: dict[str, Any] | None = None,
) -> FastAPI:
    """Build a service app with the shared plumbing installed.

    ``lifecycles`` are entered in order after the shared resources exist (engine, Redis,
    internal client) and left in reverse order at shutdown: consumers, relays and
    background loops hang from them.
    """
    configure_logging(settings.service_name, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(settings)
        app.state.sessionmaker = create_sessionmaker(app.state.engine)
        app.state.redis = create_redis(settings)
        # Every service enforces auth_service's revocations (logout, deleted user, ...).
        app.state.access_revocation = RedisAccessRevocation(app.state.redis)
        app.state.http = InternalClient(settings)
        try:
            async with contextlib.AsyncExitStack() as stack:
                for lifecycle in lifecycles:
                    await stack.enter_async_context(lifecycle(app))
                yield
        finally:
            await app.state.http.aclose()
            await app.state.redis.aclose()
            await app.state.engine.dispose()

    app = FastAPI(
        title=settings.service_name,
        description=description,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.extra_checks = dict(extra_checks or {})
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    install_error_handlers(app)
    # Innermost: the metrics' durations include the wait for a turn.
    app.add_middleware(AdmissionMiddleware, limit=settings.max_requests_in_flight)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health_router)
    app.include_router(metrics_router)
    for router in routers:
        app.include_router(router)
    return app
