"""The application factory every service is built with, and the errors its OpenAPI documents."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, Field

from ticketing_common.admission import AdmissionMiddleware
from ticketing_common.db import create_engine, create_sessionmaker
from ticketing_common.errors import install_error_handlers
from ticketing_common.health import ReadinessCheck, health_router
from ticketing_common.http_client import InternalClient
from ticketing_common.logs import RequestIdMiddleware, configure_logging
from ticketing_common.metrics import MetricsMiddleware, metrics_router
from ticketing_common.redis import create_redis
from ticketing_common.revocation import access_revocation
from ticketing_common.security import Role, require_roles, require_service_token
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
        app.state.access_revocation = access_revocation(app.state.redis)
        app.state.http = InternalClient(settings)
        try:
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(app.state.access_revocation.running())
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
    # FastAPI matches a request against the routes in order, at a few microseconds each:
    # the service's own routes come first, the probes and the scrape last.
    for router in routers:
        app.include_router(router)
    app.include_router(health_router)
    app.include_router(metrics_router)
    document_errors(app)
    return app


# -- the error statuses every route documents -------------------------------------------


class ErrorBody(BaseModel):
    """What every error answer carries (``ticketing_common.errors``)."""

    error: str = Field(description="what went wrong, for a person to read")
    code: str | None = Field(None, description="a stable machine-readable reason")
    details: Any = Field(None, description="more about the error, e.g. the seats or fields")


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid input: malformed JSON, a field that fails validation, or a value refused",
    401: "Credentials missing, invalid, expired or revoked",
    403: "Not allowed to the caller: the wrong role, or not the owner",
    404: "Not found",
    409: "In conflict with the current state",
    413: "Request body too large (the gateway takes at most 64 KB, uploads more)",
    422: "Well-formed, but not processable as sent",
    429: "Too many requests (the gateway's per-address limit, or a throttle): see Retry-After",
    503: "A dependency is unavailable for a moment: retry after Retry-After",
}
_ERROR_BODY_REF = {"$ref": "#/components/schemas/ErrorBody"}
_ROLE_GUARD = require_roles(Role.USER).dependency.__code__  # the same code for every role


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The statuses a route answers beyond those its shape implies (see
    :func:`document_errors`), for its decorator: ``responses=error_responses(403, 409)``."""
    return {status: {"description": ERROR_DESCRIPTIONS[status]} for status in statuses}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def implied_errors(route: RouteContext, operation: dict[str, Any]) -> set[int]:
    """The error statuses a route answers by its shape alone: 400 if it takes input, 404 if
    its path names something, 401 behind a token, 403 behind a role, 413 and 429 from the
    gateway for public routes, 503 when a dependency is down."""
    parameters = operation.get("parameters", [])
    calls = list(_calls(route.dependant))
    public = (route.path_format or "").startswith("/api/")
    statuses = {503}
    if parameters or "requestBody" in operation:
        statuses.add(400)
    if any(parameter["in"] == "path" for parameter in parameters):
        statuses.add(404)
    if "security" in operation or require_service_token in calls:
        statuses.add(401)
    if any(getattr(call, "__code__", None) is _ROLE_GUARD for call in calls):
        statuses.add(403)
    if public:
        statuses.add(429)
        if "requestBody" in operation:
            statuses.add(413)
    return statuses


def _document_operation(route: RouteContext, operation: dict[str, Any]) -> None:
    declared = {int(status) for status in route.responses if str(status).isdigit()}
    responses: dict[str, Any] = operation["responses"]
    if 422 not in declared:
        # FastAPI's own validation answer; these services answer 400 instead.
        responses.pop("422", None)
    for status in sorted(implied_errors(route, operation) | (declared & ERROR_DESCRIPTIONS.keys())):
        response = responses.setdefault(str(status), {})
        response.setdefault("description", ERROR_DESCRIPTIONS[status])
        # (a route that answers an error as HTML, a browser page, declares its content)
        response.setdefault("content", {"application/json": {"schema": _ERROR_BODY_REF}})
    operation["responses"] = dict(sorted(responses.items()))


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` document the errors each route really answers, with the
    error body's schema: those its shape implies (:func:`implied_errors`) plus those it
    declares (:func:`error_responses`), and FastAPI's 422 only where a route declares it.
    ``create_service_app`` calls it; a bare app built from a service's routers may too."""
    generate = app.openapi
    documented = False

    def openapi() -> dict[str, Any]:
        nonlocal documented
        schema = generate()
        if not documented:
            _document(schema, app)
            documented = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(schema: dict[str, Any], app: FastAPI) -> None:
    for route in iter_route_contexts(app.routes):  # every route of every included router
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            operations = schema["paths"][route.path_format]
            for method in route.methods or ():
                _document_operation(route, operations[method.lower()])
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    # FastAPI's 422 body, unless a route still answers it
    if "#/components/schemas/HTTPValidationError" not in json.dumps(schema["paths"]):
        schemas.pop("HTTPValidationError", None)
        if "#/components/schemas/ValidationError" not in json.dumps(schema):
            schemas.pop("ValidationError", None)
