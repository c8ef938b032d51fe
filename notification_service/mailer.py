"""Getting a rendered email out: over SMTP, or into a local mail folder when there is none.

Failures are sorted into the two kinds a caller must treat differently: a temporary one
(:class:`MailDeliveryError`: server down, 4xx, timeout) is worth retrying later, a
permanent one (:class:`MailRejected`: 5xx for this recipient or message) is not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol

import aiosmtplib

from notification_service.emails import RenderedEmail
from notification_service.settings import NotificationSettings
from ticketing_common.db import utcnow

logger = logging.getLogger("notification.mailer")

_IMPLICIT_TLS_PORT = 465


class MailDeliveryError(Exception):
    """The message could not be handed over now; trying again later may work."""


class MailRejected(Exception):
    """The server refused this message or recipient for good (a 5xx answer)."""


def _one_line(value: str, limit: int = 250) -> str:
    """Header values never carry line breaks (header injection) and stay a sane length."""
    return " ".join(value.split())[:limit]


def sender_domain(settings: NotificationSettings) -> str:
    return settings.smtp_email.rpartition("@")[2] or "ticketing.local"


def build_message(
    settings: NotificationSettings, *, recipient: str, email: RenderedEmail, message_id: str
) -> EmailMessage:
    """A multipart/alternative (text + HTML) message, mixed with any attachments.

    ``message_id`` is deterministic per notification, so a copy delivered twice in the
    rare crash window can still be recognised downstream as the same message.
    """
    message = EmailMessage()
    message["From"] = Address(settings.mail_from_name, addr_spec=settings.smtp_email)
    message["To"] = recipient
    message["Subject"] = _one_line(email.subject)
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(utcnow())
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    for attachment in email.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """SMTP with STARTTLS whenever the server offers it (implicit TLS on port 465)."""

    def __init__(self, settings: NotificationSettings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self._settings
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_email if s.smtp_password else None,
                password=s.smtp_password or None,
                use_tls=s.smtp_port == _IMPLICIT_TLS_PORT,
                start_tls=None if s.smtp_port != _IMPLICIT_TLS_PORT else False,
                timeout=s.smtp_timeout_seconds,
                cert_bundle=s.smtp_ca_file,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(r.code >= 500 for r in exc.recipients):
                raise MailRejected(f"recipient refused: {exc}") from exc
            raise MailDeliveryError(f"recipient deferred: {exc}") from exc
        except (aiosmtplib.SMTPDataError, aiosmtplib.SMTPRecipientRefused) as exc:
            if exc.code >= 500:
                raise MailRejected(f"message refused: {exc.code} {exc.message}") from exc
            raise MailDeliveryError(f"SMTP {exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailDeliveryError(f"SMTP unavailable: {type(exc).__name__}: {exc}") from exc


class MailDirMailer:
    """No SMTP server configured: write each message as ``.eml`` under ``MAIL_DIR``.

    The file is named after the Message-ID, so a resent message replaces its copy.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def path_for(self, message: EmailMessage) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(message["Message-ID"]).strip("<>"))
        return self._directory / f"{name}.eml"

    def _write(self, message: EmailMessage) -> Path:
        self._directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(message)
        partial = path.with_suffix(".eml.part")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, path)
        return path

    async def send(self, message: EmailMessage) -> None:
        try:
            path = await asyncio.to_thread(self._write, message)
        except OSError as exc:
            raise MailDeliveryError(f"cannot write to the mail folder: {exc}") from exc
        logger.info(
            "email written to the mail folder (no SMTP_HOST)",
            extra={"recipient": message["To"], "subject": message["Subject"], "path": str(path)},
        )


def create_mailer(settings: NotificationSettings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(settings)
    return MailDirMailer(settings.mail_dir)
