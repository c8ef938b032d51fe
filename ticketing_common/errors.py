"""The JSON error model, mapped in one place.

Every error leaves a service as ``{"error": "<message>"}`` (plus optional ``code`` and
``details``). Expected failures are :class:`DomainError` subclasses carrying their status;
anything else is a bug and answers 500 without leaking internals.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

logger = logging.getLogger("ticketing.errors")


class DomainError(Exception):
    """An expected failure of a domain rule, with the HTTP status it maps to."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message()
        self.details = details
        self.headers = headers
        super().__init__(self.message)

    @classmethod
    def default_message(cls) -> str:
        return cls.code.replace("_", " ")


class BadRequest(DomainError):
    status_code = 400
    code = "bad_request"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


class TooManyRequests(DomainError):
    status_code = 429
    code = "too_many_requests"


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "service_unavailable"


class UpstreamError(DomainError):
    """Another service answered badly or not at all."""

    status_code = 502
    code = "upstream_error"


def error_body(message: str, code: str | None = None, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if code:
        body["code"] = code
    if details is not None:
        body["details"] = details
    return body


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        details.append({"field": ".".join(loc) or "body", "message": err.get("msg", "invalid")})
    return details


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return JSONResponse(
        error_body(exc.message, exc.code, exc.details),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    first = details[0] if details else {"field": "body", "message": "invalid"}
    message = f"invalid request: {first['field']}: {first['message']}"
    return JSONResponse(error_body(message, "validation_error", details), status_code=400)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = "not found"
    elif exc.status_code == 405:
        message = "method not allowed"
    return JSONResponse(
        error_body(message), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


#: connection failures, too many connections, server shutting down or starting up
_UNAVAILABLE_STATES = ("08", "53", "57P01", "57P02", "57P03")


def _sqlstate(exc: DBAPIError) -> str:
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state is None and orig is not None:  # asyncpg's error hides behind the adapter's
        state = getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return str(state or "")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """Input PostgreSQL refuses as data (class 22: NUL bytes, out-of-range numbers) is a 400.

    A database that is out of connections or restarting is a 503 the client may retry;
    anything else from the database is a bug and stays a 500.
    """
    assert isinstance(exc, DBAPIError)
    state = _sqlstate(exc)
    if state.startswith("22"):
        return JSONResponse(
            error_body("invalid input: a value cannot be stored as given", "invalid_input"),
            status_code=400,
        )
    if exc.connection_invalidated or state.startswith(_UNAVAILABLE_STATES):
        return await _dependency_down(request, exc)
    return await _unhandled_error(request, exc)


async def _raw_database_error(request: Request, exc: Exception) -> JSONResponse:
    """The same mapping for the raw asyncpg pools of the hot paths (``create_pg_pool``)."""
    assert isinstance(
        exc, asyncpg.PostgresError | asyncpg.InterfaceError | asyncpg.InternalClientError
    )
    state = str(getattr(exc, "sqlstate", "") or "")
    if state.startswith("22"):
        return JSONResponse(
            error_body("invalid input: a value cannot be stored as given", "invalid_input"),
            status_code=400,
        )
    # InternalClientError: a connection the server dropped mid-operation (a restart) is
    # left in a state asyncpg refuses to use; the request may be retried on another.
    broken = asyncpg.InterfaceError | asyncpg.InternalClientError
    if isinstance(exc, broken) or state.startswith(_UNAVAILABLE_STATES):
        return await _dependency_down(request, exc)
    return await _unhandled_error(request, exc)


async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL or Redis unreachable: a 503 the client may retry, not a 500."""
    logger.warning(
        "dependency unavailable on %s %s: %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc,
    )
    return JSONResponse(
        error_body("a dependency is temporarily unavailable, retry shortly", "service_unavailable"),
        status_code=503,
        headers={"Retry-After": "1"},
    )


async def _text_not_unicode(_: Request, exc: Exception) -> JSONResponse:
    """JSON may carry lone surrogates (``"\\ud800"``) that no UTF-8 text can hold."""
    return JSONResponse(
        error_body("invalid input: text is not valid unicode", "invalid_input"), status_code=400
    )


#: nginx's code for "the client closed the connection before the answer"
CLIENT_CLOSED_REQUEST = 499


async def _client_went_away(request: Request, _: Exception) -> JSONResponse:
    """The client hung up while its body was still being read: nobody is left to answer,
    and nothing went wrong on this side (no 500, no stack trace in the logs)."""
    logger.info("client went away during %s %s", request.method, request.url.path)
    return JSONResponse(
        error_body("the client closed the connection", "client_closed_request"),
        status_code=CLIENT_CLOSED_REQUEST,
    )


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal server error", "internal"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(asyncpg.PostgresError, _raw_database_error)
    app.add_exception_handler(asyncpg.InterfaceError, _raw_database_error)
    app.add_exception_handler(asyncpg.InternalClientError, _raw_database_error)
    app.add_exception_handler(UnicodeEncodeError, _text_not_unicode)
    app.add_exception_handler(ClientDisconnect, _client_went_away)
    for unreachable in (ConnectionError, RedisConnectionError, RedisTimeoutError):
        app.add_exception_handler(unreachable, _dependency_down)
    app.add_exception_handler(Exception, _unhandled_error)
