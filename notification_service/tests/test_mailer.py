"""Handing emails to a real SMTP server (or the mail folder) and sorting its failures."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from notification_service.emails import Attachment, RenderedEmail
from notification_service.mailer import (
    EncodedEmail,
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


def message_for(settings: NotificationSettings, subject: str = EMAIL.subject) -> EncodedEmail:
    email = RenderedEmail(subject, EMAIL.text, EMAIL.html, EMAIL.attachments)
    return build_message(
        settings, recipient="buyer@example.com", email=email, message_id="<t.1@example.com>"
    )


async def send_once(settings: NotificationSettings, message: EncodedEmail) -> None:
    """Send on a mailer of its own, closed afterwards (no connection kept)."""
    async with contextlib.aclosing(SmtpMailer(settings)) as mailer:
        await mailer.send(message)


@pytest.fixture
def sink() -> Any:
    with smtp_sink() as running:
        yield running


async def test_smtp_delivers_text_html_and_the_pdf_attachment(sink: SmtpSink) -> None:
    settings = settings_for(sink.port)

    await send_once(settings, message_for(settings))

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


async def test_the_message_is_text_and_html_alternatives_mixed_with_the_attachment(
    sink: SmtpSink,
) -> None:
    settings = settings_for(sink.port)

    await send_once(settings, message_for(settings))

    [received] = sink.to("buyer@example.com")
    assert received.defects == []
    assert received["MIME-Version"] == "1.0"
    assert received.get_content_type() == "multipart/mixed"
    alternative, attachment = received.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert attachment.get_content_disposition() == "attachment"
    assert received["Date"].datetime.tzinfo is not None


async def test_an_email_without_attachments_is_just_the_two_alternatives(sink: SmtpSink) -> None:
    settings = settings_for(sink.port)
    email = RenderedEmail("Verify your email address", "Code: 123456\n", "<p>Code</p>")

    await send_once(
        settings,
        build_message(settings, recipient="buyer@example.com", email=email, message_id="<v@x>"),
    )

    [received] = sink.to("buyer@example.com")
    assert received.get_content_type() == "multipart/alternative"
    assert received.get_body(("plain",)).get_content().splitlines() == ["Code: 123456"]  # type: ignore[union-attr]
    assert list(received.iter_attachments()) == []


async def test_titles_and_names_in_any_script_arrive_as_written(sink: SmtpSink) -> None:
    settings = settings_for(sink.port, MAIL_FROM_NAME="Ticketing · ትኬት")
    title = "የኢትዮጵያ ጃዝ ምሽት — Ночь джаза «live» =?utf-8?q?not-a-word?="
    email = RenderedEmail(
        f"Your ticket for {title}",
        f"Event: {title}\n",
        f"<b>{title}</b>",
        EMAIL.attachments,
    )

    await send_once(
        settings,
        build_message(settings, recipient="buyer@example.com", email=email, message_id="<u@x>"),
    )

    [received] = sink.to("buyer@example.com")
    assert received["Subject"] == f"Your ticket for {title}"
    assert received["From"].addresses[0].display_name == "Ticketing · ትኬት"
    assert received.get_body(("plain",)).get_content().splitlines() == [f"Event: {title}"]  # type: ignore[union-attr]
    assert f"<b>{title}</b>" in received.get_body(("html",)).get_content()  # type: ignore[union-attr]


async def test_a_long_subject_is_folded_and_reads_back_whole(sink: SmtpSink) -> None:
    settings = settings_for(sink.port)
    subject = "Your ticket for " + " ".join(["The Very Long Festival of Ethiopian Jazz"] * 4)

    await send_once(settings, message_for(settings, subject))

    [received] = sink.to("buyer@example.com")
    assert received["Subject"] == subject


def test_a_recipient_that_could_carry_another_header_is_refused_for_good() -> None:
    settings = settings_for(free_port())

    with pytest.raises(MailRejected):
        build_message(
            settings,
            recipient="buyer@example.com\r\nBcc: victim@example.com",
            email=EMAIL,
            message_id="<t.1@example.com>",
        )


async def test_a_subject_with_line_breaks_cannot_inject_headers(sink: SmtpSink) -> None:
    settings = settings_for(sink.port)

    await send_once(settings, message_for(settings, "Hi\r\nBcc: victim@example.com"))

    [received] = sink.to("buyer@example.com")
    assert received["Bcc"] is None
    assert received["Subject"] == "Hi Bcc: victim@example.com"


async def test_consecutive_emails_share_one_connection(sink: SmtpSink) -> None:
    settings = settings_for(sink.port)

    async with contextlib.aclosing(SmtpMailer(settings)) as mailer:
        for _ in range(3):
            await mailer.send(message_for(settings))

    assert len(sink.to("buyer@example.com")) == 3
    assert len(set(sink.peers)) == 1


async def test_a_kept_connection_the_server_hangs_up_is_replaced_and_the_email_goes_out(
    sink: SmtpSink,
) -> None:
    settings = settings_for(sink.port)

    async with contextlib.aclosing(SmtpMailer(settings)) as mailer:
        await mailer.send(message_for(settings))
        sink.mode = "hang_up_at_mail"
        await mailer.send(message_for(settings))

    assert len(sink.to("buyer@example.com")) == 2
    assert len(set(sink.peers)) == 2


async def test_a_kept_connection_to_a_restarted_server_is_replaced() -> None:
    with smtp_sink() as before_the_restart:
        settings = settings_for(before_the_restart.port, SMTP_TIMEOUT_SECONDS=2)
        mailer = SmtpMailer(settings)
        await mailer.send(message_for(settings))
    async with contextlib.aclosing(mailer):
        with smtp_sink(port=before_the_restart.port) as restarted:
            await mailer.send(message_for(settings))

    assert len(before_the_restart.to("buyer@example.com")) == 1
    assert len(restarted.to("buyer@example.com")) == 1


async def test_a_failure_after_mail_from_is_not_tried_again_on_another_connection(
    sink: SmtpSink,
) -> None:
    settings = settings_for(sink.port)

    async with contextlib.aclosing(SmtpMailer(settings)) as mailer:
        await mailer.send(message_for(settings))
        sink.mode = "down"
        with pytest.raises(MailDeliveryError, match="421"):
            await mailer.send(message_for(settings))
        sink.mode = "accept"
        await mailer.send(message_for(settings))

    assert sink.refused == 1
    first, after_the_failure = sink.peers
    assert first != after_the_failure  # the failed connection was not kept


async def test_a_server_answering_421_is_a_temporary_failure(sink: SmtpSink) -> None:
    settings = settings_for(sink.port)
    sink.mode = "down"

    with pytest.raises(MailDeliveryError, match="421"):
        await send_once(settings, message_for(settings))


async def test_a_server_answering_550_is_a_permanent_rejection(sink: SmtpSink) -> None:
    settings = settings_for(sink.port)
    sink.mode = "reject"

    with pytest.raises(MailRejected, match="550"):
        await send_once(settings, message_for(settings))


async def test_no_server_listening_is_a_temporary_failure() -> None:
    settings = settings_for(free_port(), SMTP_TIMEOUT_SECONDS=2)

    with pytest.raises(MailDeliveryError):
        await send_once(settings, message_for(settings))


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

        await send_once(settings, message_for(settings))

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
