"""Shared by the failure drills in this folder: how a refusal must look.

Stack fixtures (``client``, ``new_client``, ``mailbox``...) come from ``tests/conftest.py``.
"""

from __future__ import annotations

from typing import Any

import httpx


def json_error(response: httpx.Response, *statuses: int, what: str = "") -> dict[str, Any]:
    """Assert ``response`` is one of ``statuses`` (any 4xx if none given) with a JSON error
    body ``{"error": "<message>", ...}``; return the body. ``what`` names the case."""
    described = f"{what + ': ' if what else ''}{response.request.method} {response.request.url}"
    if statuses:
        assert response.status_code in statuses, (
            f"{described}: expected {statuses}, got {response.status_code} {response.text[:300]}"
        )
    else:
        assert 400 <= response.status_code < 500, (
            f"{described}: expected a 4xx, got {response.status_code} {response.text[:300]}"
        )
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/json"), (
        f"{described}: {response.status_code} is not JSON ({content_type}): {response.text[:300]}"
    )
    body = response.json()
    assert isinstance(body, dict), f"{described}: error body is not an object: {body!r}"
    assert isinstance(body.get("error"), str), f"{described}: no 'error' message: {body!r}"
    assert body["error"], f"{described}: empty 'error' message"
    return body
