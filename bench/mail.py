"""A local SMTP server that keeps verification codes and drops everything else.

notification_service of the bench stack sends mail here: the verification codes the
account setup needs, and one PDF ticket per confirmed booking during the flash sale.
Tickets are accepted (so the service never piles up retries) and thrown away unparsed.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

_CODE = re.compile(r"verification code:\s*(\S+)", re.IGNORECASE)
_MARKER = b"verification code"
CODE_WAIT_SECONDS = 120.0


def verification_code(raw: bytes) -> tuple[str, str] | None:
    """(recipient, code) of a verification email; None for any other message."""
    if _MARKER not in raw.lower():
        return None
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    text = str(body.get_content()) if body is not None else ""
    match = _CODE.search(text)
    if match is None:
        return None
    return str(message.get("To", "")).strip().lower(), match.group(1)


class MailSink:
    """``with MailSink(port) as sink: code = await sink.code_for(email)``."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._codes: dict[str, str] = {}
        self._lock = threading.Lock()
        self.received = 0
        self._controller = Controller(self, hostname=host, port=port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = verification_code(envelope.content)
        with self._lock:
            self.received += 1
            if found is not None:
                self._codes[found[0]] = found[1]
        return "250 OK"

    async def code_for(self, email: str) -> str:
        """The latest verification code sent to ``email``, waiting for it to arrive."""
        deadline = time.monotonic() + CODE_WAIT_SECONDS
        while True:
            with self._lock:
                code = self._codes.get(email.lower())
            if code is not None:
                return code
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no verification email to {email} within {CODE_WAIT_SECONDS:.0f}s"
                )
            await asyncio.sleep(0.1)

    def __enter__(self) -> MailSink:
        self._controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._controller.stop()
