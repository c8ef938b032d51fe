"""The one pooled HTTP client for service-to-service calls under ``/internal``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from ticketing_common.errors import NotFound, ServiceUnavailable, UpstreamError
from ticketing_common.logs import REQUEST_ID_HEADER, request_id_var
from ticketing_common.security import SERVICE_TOKEN_HEADER
from ticketing_common.settings import ServiceSettings

logger = logging.getLogger("ticketing.http")

_RETRYABLE_STATUS = frozenset({502, 503, 504})


class InternalClient:
    """Calls other services with the service token, timeouts and bounded retries.

    Only idempotent methods are retried (GET, PUT, DELETE, and POSTs the caller marks
    ``idempotent=True`` because the callee deduplicates them).
    """

    def __init__(
        self, settings: ServiceSettings, transport: httpx.AsyncBaseTransport | None = None
    ):
        self._settings = settings
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.internal_http_timeout_seconds, connect=2.0),
            limits=httpx.Limits(
                max_connections=settings.internal_http_max_connections,
                max_keepalive_connections=settings.internal_http_max_connections,
            ),
            headers={SERVICE_TOKEN_HEADER: settings.service_token},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool | None = None,
        expected: tuple[int, ...] = (200, 201, 204),
    ) -> httpx.Response:
        """Send the request; 4xx answers are returned, transport faults and 5xx raise."""
        retry = idempotent if idempotent is not None else method.upper() != "POST"
        attempts = 1 + (self._settings.internal_http_retries if retry else 0)
        headers = {}
        request_id = request_id_var.get()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        last_error: str = ""
        for attempt in range(attempts):
            try:
                response = await self._client.request(
                    method, url, json=json, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in _RETRYABLE_STATUS:
                    return response
                last_error = f"status {response.status_code}"
            if attempt + 1 < attempts:
                await asyncio.sleep(0.05 * 2**attempt)
        logger.warning("internal call failed", extra={"url": url, "error": last_error})
        raise ServiceUnavailable(f"dependency unavailable: {url.split('/internal')[0]}")

    async def get_json(self, url: str, *, what: str = "resource") -> Any:
        response = await self.request("GET", url)
        if response.status_code == 404:
            raise NotFound(f"{what} not found")
        if response.status_code != 200:
            raise UpstreamError(f"{what} lookup failed with status {response.status_code}")
        return response.json()
