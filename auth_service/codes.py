"""One-time codes sent by email: six random digits, stored only as a keyed hash.

The hash is an HMAC keyed with a secret derived from ``JWT_SECRET``, so a leaked table
cannot be brute-forced offline (a plain hash of a six-digit code could, in a second).

A verification email also carries the Go original's link,
``FRONTEND_URL/verify-email?token=<64 hex>&email=<address>``. Its token is a second HMAC,
of the stored code hash under another derived key: it stands for the same code (either one
verifies, and using one uses up both), needs no column of its own, and cannot be made from
a leaked table without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import urlencode

from auth_service.models import CodePurpose
from auth_service.settings import AuthSettings

CODE_DIGITS = 6
_LINK_TOKEN = re.compile(r"[0-9a-f]{64}")


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _key(settings: AuthSettings, purpose: bytes = b"one-time-codes") -> bytes:
    return hashlib.sha256(b"auth_service/" + purpose + b"/" + settings.jwt_secret.encode()).digest()


def hash_code(settings: AuthSettings, user_id: int, purpose: str, code: str) -> str:
    message = f"{purpose}:{user_id}:{code.strip()}".encode()
    return hmac.new(_key(settings), message, hashlib.sha256).hexdigest()


def link_token(settings: AuthSettings, code_hash: str) -> str:
    """The 64-hex token of the verification link for the code stored as ``code_hash``."""
    return hmac.new(_key(settings, b"link-tokens"), code_hash.encode(), hashlib.sha256).hexdigest()


def is_link_token(given: str) -> bool:
    return _LINK_TOKEN.fullmatch(given.strip().lower()) is not None


def code_matches(
    settings: AuthSettings, user_id: int, purpose: str, given: str, stored: str
) -> bool:
    """Whether ``given`` is the code stored as ``stored``, or (verification codes only)
    its link's token."""
    if is_link_token(given):
        return purpose == CodePurpose.EMAIL_VERIFICATION and hmac.compare_digest(
            link_token(settings, stored), given.strip().lower()
        )
    return hmac.compare_digest(hash_code(settings, user_id, purpose, given), stored)


def verification_link(settings: AuthSettings, user_id: int, email: str, code: str) -> str:
    """The original's link for verification ``code``: the front end's page, which posts
    the token and the address to ``/api/auth/verify-email``."""
    code_hash = hash_code(settings, user_id, CodePurpose.EMAIL_VERIFICATION, code)
    query = urlencode({"token": link_token(settings, code_hash), "email": email})
    return f"{settings.frontend_url.rstrip('/')}/verify-email?{query}"
