"""The one pooled HTTP client for service-to-service calls under ``/internal``.

It sends over aiohttp: measured on this machine under the booking benchmark, an httpx call
to event_service cost about 2 ms of CPU (most of it httpcore scanning its connection pool,
encode/httpx#3215) where aiohttp costs under half a millisecond. Tests that run services
in-process hand it an httpx ASGI transport instead (:class:`HttpxTransport`).

Calls are typed (:meth:`InternalClient.call`): the body is an internal-API model, the
answer is parsed into one, and an error answer with a known code is raised again as the
callee's own domain error (:mod:`ticketing_common.internal.errors`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp
import httpx
import orjson
from pydantic import BaseModel, ValidationError

from ticketing_common.errors import ServiceUnavailable, UpstreamError
from ticketing_common.internal.errors import remote_error
from ticketing_common.logs import REQUEST_ID_HEADER, request_id_var
from ticketing_common.security import SERVICE_TOKEN_HEADER
from ticketing_common.settings import ServiceSettings

logger = logging.getLogger("ticketing.http")

_RETRYABLE_STATUS = frozenset({502, 503, 504})
_JSON = "application/json"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


class TransportFault(Exception):
    """The request did not get an answer (refused, reset, timed out)."""


class Transport(Protocol):
    async def send(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> RawResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """Keep-alive connections to the other services, opened on the serving loop."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        settings = self._settings
        connector = aiohttp.TCPConnector(
            limit=settings.internal_http_max_connections,
            keepalive_timeout=30,
            # Our own services, by address: no DNS cache games, no proxies from the env.
            use_dns_cache=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=settings.internal_http_timeout_seconds, connect=2.0
            ),
            json_serialize=lambda value: orjson.dumps(value).decode(),
            skip_auto_headers=("User-Agent",),
        )
        return self._session

    async def send(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> RawResponse:
        session = self._session or self._open()
        try:
            async with session.request(method, url, data=body, headers=headers) as response:
                return RawResponse(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportFault(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxTransport:
    """Any httpx transport (tests route calls to in-process apps with ``ASGITransport``)."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: float = 5.0) -> None:
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout)

    async def send(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> RawResponse:
        try:
            response = await self._client.request(method, url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise TransportFault(f"{type(exc).__name__}: {exc}") from exc
        return RawResponse(response.status_code, response.content)

    async def aclose(self) -> None:
        await self._client.aclose()


def _service_of(url: str) -> str:
    """``the events service`` for ``.../internal/events/...``: what an error message may
    name (never an internal address)."""
    _, _, path = url.partition("/internal/")
    return f"the {path.split('/', 1)[0] or 'internal'} service"


class InternalClient:
    """Calls other services with the service token, timeouts and bounded retries.

    Only idempotent requests are retried (GET, PUT, DELETE, and POSTs the caller marks
    ``idempotent=True`` because the callee deduplicates them), after a transport fault or
    a 502/503/504: a keep-alive connection the callee closed (a restart) costs one retry,
    not a failed request.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        transport: Transport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._transport: Transport = self._adopt(transport) or AiohttpTransport(settings)
        self._headers = {SERVICE_TOKEN_HEADER: settings.service_token}

    def _adopt(self, transport: Transport | httpx.AsyncBaseTransport | None) -> Transport | None:
        if isinstance(transport, httpx.AsyncBaseTransport):
            return HttpxTransport(transport, self._settings.internal_http_timeout_seconds)
        return transport

    async def use_transport(self, transport: Transport | httpx.AsyncBaseTransport) -> None:
        """Send every later call through ``transport``: tests route a running app's calls
        to in-process apps, and every typed client built on this one follows."""
        previous, self._transport = self._transport, self._adopt(transport) or self._transport
        await previous.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: BaseModel | None = None,
        idempotent: bool | None = None,
    ) -> RawResponse:
        """Send the request; answers below 500 are returned, transport faults and 5xx raise."""
        retry = idempotent if idempotent is not None else method.upper() != "POST"
        attempts = 1 + (self._settings.internal_http_retries if retry else 0)
        headers = dict(self._headers)
        payload = None
        if body is not None:
            payload = body.model_dump_json(exclude_none=True).encode()
            headers["Content-Type"] = _JSON
        request_id = request_id_var.get()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        last_error = ""
        for attempt in range(attempts):
            try:
                response = await self._transport.send(method, url, payload, headers)
            except TransportFault as exc:
                last_error = str(exc)
            else:
                if response.status not in _RETRYABLE_STATUS:
                    return response
                last_error = f"status {response.status}"
            if attempt + 1 < attempts:
                await asyncio.sleep(0.05 * 2**attempt)
        logger.warning("internal call failed", extra={"url": url, "error": last_error})
        raise ServiceUnavailable("a service this request needs is unavailable; retry shortly")

    async def call(
        self,
        method: str,
        url: str,
        answer: type[M],
        *,
        body: BaseModel | None = None,
        idempotent: bool | None = None,
    ) -> M:
        """Send a typed request and parse its typed answer (see module docstring)."""
        response = await self.request(method, url, body=body, idempotent=idempotent)
        self._raise_for_status(response, url)
        try:
            return answer.model_validate_json(response.body)
        except ValidationError as exc:
            raise UpstreamError(f"{_service_of(url)} sent an unreadable {answer.__name__}") from exc

    async def send(
        self,
        method: str,
        url: str,
        *,
        body: BaseModel | None = None,
        idempotent: bool | None = None,
    ) -> None:
        """A typed request whose answer has no body to read (204)."""
        response = await self.request(method, url, body=body, idempotent=idempotent)
        self._raise_for_status(response, url)

    @staticmethod
    def _raise_for_status(response: RawResponse, url: str) -> None:
        if 200 <= response.status < 300:
            return
        try:
            body = response.json()
        except orjson.JSONDecodeError:
            body = None
        error = remote_error(response.status, body, _service_of(url))
        if error.status_code >= 500:
            logger.warning(
                "internal call answered an error", extra={"url": url, "status": response.status}
            )
        raise error
