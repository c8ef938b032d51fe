"""Handing emails to a real SMTP server (or the mail folder) and sorting its failures."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from notification_service.emails import Attachment, RenderedEmail
from notification_service.mailer import (
    MailDeliveryError,
    MailDirMailer,
    MailRejected,
    SmtpMailer,
    build_message,
    create_mailer,
)
from notification_service.settings import NotificationSettings
from notification_service.tests.smtp import SmtpSink, free_port, smtp_sink

EMAIL = RenderedEmail(
    subject="Your ticket for Jazz Night",
    text="Plain words.\n",
    html="<p>Rich words.</p>",
    attachments=(Attachment("ticket-7.pdf", "application/pdf", b"%PDF-1.4 not really"),),
)


def settings_for(port: int, **more: Any) -> NotificationSettings:
    return NotificationSettings(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        SMTP_EMAIL="tickets@example.com",
        APP_ENV="test",
        **more,
    )


def message_for(settings: NotificationSettings, subject: str = EMAIL.subject) -> Any:
    email = RenderedEmail(subject, EMAIL.text, EMAIL.html, EMAIL.attachments)
    return build_message(
        settings, recipient="buyer@example.com", email=email, message_id="<t.1@example.com>"
    )


@pytest.fixture
def sink() -> Any:
    with smtp_sink() as running:
        yield running


async def test_smtp_delivers_text_html_and_the_pdf_attachment(sink: SmtpSink) -> None:
    settings = settings_for(sink.port)

    await SmtpMailer(settings).send(message_for(settings))

    [received] = sink.to("buyer@example.com")
    assert received["Subject"] == "Your ticket for Jazz Night"
    assert received["Message-ID"].strip() == "<t.1@example.com>"
    assert "tickets@example.com" in received["From"]
    assert received.get_body(("plain",)).get_content().strip() == "Plain words."  # type: ignore[union-attr]
    assert "Rich words." in received.get_body(("html",)).get_content()  # type: ignore[union-attr]
    [attachment] = list(received.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "ticket-7.pdf"
    assert attachment.get_content() == b"%PDF-1.4 not really"


async def test_a_subject_with_line_breaks_cannot_inject_headers(sink: SmtpSink) -> None:
    settings = settings_for(sink.port)

    await SmtpMailer(settings).send(message_for(settings, "Hi\r\nBcc: victim@example.com"))

    [received] = sink.to("buyer@example.com")
    assert received["Bcc"] is None
    assert received["Subject"] == "Hi Bcc: victim@example.com"


async def test_a_server_answering_421_is_a_temporary_failure(sink: SmtpSink) -> None:
    settings = settings_for(sink.port)
    sink.mode = "down"

    with pytest.raises(MailDeliveryError, match="421"):
        await SmtpMailer(settings).send(message_for(settings))


async def test_a_server_answering_550_is_a_permanent_rejection(sink: SmtpSink) -> None:
    settings = settings_for(sink.port)
    sink.mode = "reject"

    with pytest.raises(MailRejected, match="550"):
        await SmtpMailer(settings).send(message_for(settings))


async def test_no_server_listening_is_a_temporary_failure() -> None:
    settings = settings_for(free_port(), SMTP_TIMEOUT_SECONDS=2)

    with pytest.raises(MailDeliveryError):
        await SmtpMailer(settings).send(message_for(settings))


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_starttls_is_used_when_the_server_offers_it(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with smtp_sink(tls_context=context) as sink:
        settings = settings_for(sink.port, SMTP_CA_FILE=str(cert))

        await SmtpMailer(settings).send(message_for(settings))

    assert sink.over_tls == [True]


async def test_without_smtp_host_the_email_is_written_to_the_mail_folder(tmp_path: Path) -> None:
    settings = NotificationSettings(MAIL_DIR=str(tmp_path / "mail"), APP_ENV="test")
    mailer = create_mailer(settings)
    assert isinstance(mailer, MailDirMailer)

    await mailer.send(message_for(settings))
    await mailer.send(message_for(settings))  # the same message again replaces its file

    [written] = list((tmp_path / "mail").iterdir())
    assert written.suffix == ".eml"
    parsed = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert parsed["To"] == "buyer@example.com"
    assert parsed["Subject"] == "Your ticket for Jazz Night"
