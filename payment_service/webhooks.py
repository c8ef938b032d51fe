"""Signed provider callbacks: ``X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The HMAC covers ``f"{t}."`` followed by the raw request body, keyed with the shared
``PAYMENT_WEBHOOK_SECRET``. The timestamp is inside the signature, so an old callback
cannot be replayed with a fresh one; callbacks older than the allowed age are refused.
"""

from __future__ import annotations

import hashlib
import hmac

from payment_service.errors import InvalidSignature, StaleSignature

SIGNATURE_HEADER = "X-Signature"


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value a provider sends with ``body`` at ``timestamp``."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            macs.append(value)
    if timestamp is None or not macs:
        raise InvalidSignature("malformed signature header")
    return timestamp, macs


def check_signature(
    secret: str, header: str | None, body: bytes, *, now: float, max_age_seconds: int
) -> None:
    """Raise :class:`InvalidSignature` or :class:`StaleSignature` unless the callback is genuine.

    The MAC is checked first, so a forged header learns nothing from the age check.
    """
    if not header:
        raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
    timestamp, macs = _parse(header)
    expected = _mac(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, mac) for mac in macs):
        raise InvalidSignature("signature does not match")
    if abs(now - timestamp) > max_age_seconds:
        raise StaleSignature("callback timestamp outside the allowed window")
