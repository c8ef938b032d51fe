"""One-time codes sent by email: six random digits, stored only as a keyed hash.

The hash is an HMAC keyed with a secret derived from ``JWT_SECRET``, so a leaked table
cannot be brute-forced offline (a plain hash of a six-digit code could, in a second).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from auth_service.settings import AuthSettings

CODE_DIGITS = 6


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _key(settings: AuthSettings) -> bytes:
    return hashlib.sha256(b"auth_service/one-time-codes/" + settings.jwt_secret.encode()).digest()


def hash_code(settings: AuthSettings, user_id: int, purpose: str, code: str) -> str:
    message = f"{purpose}:{user_id}:{code.strip()}".encode()
    return hmac.new(_key(settings), message, hashlib.sha256).hexdigest()


def code_matches(
    settings: AuthSettings, user_id: int, purpose: str, code: str, stored: str
) -> bool:
    return hmac.compare_digest(hash_code(settings, user_id, purpose, code), stored)
