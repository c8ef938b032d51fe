"""notification_service settings: the shared ones plus this service's own."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field

from notification_service.tickets import DEFAULT_TICKET_FONT_DIRS
from ticketing_common.settings import ServiceSettings


class NotificationSettings(ServiceSettings):
    service_name: str = "notification_service"
    port: int = Field(3005, alias="PORT")
    db_name: str = Field("notification_db", alias="DB_NAME")

    # SMTP (the original's names). Without SMTP_HOST every email is written as an .eml
    # file under MAIL_DIR instead, so a developer can read codes without a mail server.
    smtp_host: str | None = Field(None, alias="SMTP_HOST")
    smtp_port: int = Field(587, alias="SMTP_PORT")
    smtp_email: str = Field("no-reply@ticketing.local", alias="SMTP_EMAIL")
    smtp_password: str | None = Field(None, alias="SMTP_PASSWORD")
    smtp_timeout_seconds: float = Field(15.0, alias="SMTP_TIMEOUT_SECONDS")
    mail_from_name: str = Field("Ticketing", alias="MAIL_FROM_NAME")
    mail_dir: Path = Field(Path(".run/mail"), alias="MAIL_DIR")

    # A try that died mid-send (process killed, connection lost) blocks its notification
    # this long before a redelivery may take it over; with the default retry delays
    # (1, 5, 30 s) the fourth delivery of five finds it free.
    delivery_lease_seconds: float = Field(30.0, alias="NOTIFICATION_LEASE_SECONDS", gt=0)
    # After the mail server accepted an email, how long to keep trying to record it as sent
    # (PostgreSQL restarting) before giving up; giving up risks sending it again.
    record_sent_patience_seconds: float = Field(
        40.0, alias="NOTIFICATION_RECORD_SENT_PATIENCE_SECONDS", gt=0
    )

    # Trusted CA bundle for the SMTP server's certificate (a private CA); system CAs if unset.
    smtp_ca_file: str | None = Field(None, alias="SMTP_CA_FILE")

    # Folders searched, in order, for the PDF tickets' TrueType fonts (DejaVuSans.ttf and
    # DejaVuSans-Bold.ttf from fonts-dejavu-core, AbyssinicaSIL-Regular.ttf from
    # fonts-sil-abyssinica): a JSON list, e.g. ["/opt/fonts"]. Without them tickets fall
    # back to Helvetica, which prints only Latin-1 (no Amharic, Greek or Cyrillic).
    ticket_font_dirs: tuple[Path, ...] = Field(DEFAULT_TICKET_FONT_DIRS, alias="TICKET_FONT_DIRS")


@lru_cache
def get_settings() -> NotificationSettings:
    return NotificationSettings()
