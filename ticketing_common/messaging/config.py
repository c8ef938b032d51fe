"""Tuning of the relay and the consumers, read from ``MESSAGING_*`` environment variables.

The defaults suit production: a failing handler is retried after 1 s, 5 s, 30 s and 2 min
before its message is parked in the dead-letter queue. Tests pass shorter values.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class MessagingSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MESSAGING_", env_file=".env", extra="ignore", frozen=True
    )

    #: deliveries of one message (the first one included) before it is dead-lettered
    max_attempts: int = Field(5, ge=1)
    #: back-off before attempt 2, 3, ...; the last value repeats. One delay queue each.
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0)
    #: unacknowledged messages the broker hands a consumer ahead, per queue
    prefetch: int = Field(16, ge=1)
    #: handlers one service runs at once (each holds a database connection)
    concurrency: int = Field(8, ge=1)
    #: a handler running longer than this fails (and is retried)
    handler_timeout: float = Field(60.0, gt=0)
    #: on shutdown, in-flight handlers get this long to finish before they are cancelled
    shutdown_grace: float = Field(10.0, ge=0)

    #: outbox rows one relay claims per transaction
    relay_batch_size: int = Field(100, ge=1)
    #: the relay wakes on NOTIFY at commit; it also polls this often in case one is missed
    relay_poll_interval: float = Field(1.0, gt=0)
    #: after a wake-up the relay waits this long, so a burst of commits goes out in one pass
    relay_linger: float = Field(0.005, ge=0, le=1)
    #: publisher-confirm channels the relay spreads a batch over. aio-pika sends one
    #: channel's publishes one after another, each waiting its turn of the event loop, so
    #: in a busy process one channel fell seconds behind an on-sale's bookings
    relay_channels: int = Field(4, ge=1, le=64)
    #: longest wait for a publisher confirm
    publish_timeout: float = Field(10.0, gt=0)
    #: published outbox rows are deleted after this many seconds (default 7 days)
    outbox_retention: float = Field(7 * 24 * 3600.0, gt=0)

    #: pause between reconnection attempts to RabbitMQ and to the LISTEN connection
    reconnect_interval: float = Field(2.0, gt=0)
    #: how long service start-up waits for the broker before carrying on without it
    startup_wait: float = Field(5.0, ge=0)

    @field_validator("retry_delays")
    @classmethod
    def _positive_delays(cls, delays: tuple[float, ...]) -> tuple[float, ...]:
        if not delays or any(d <= 0 for d in delays):
            raise ValueError("retry_delays needs at least one delay, all above zero")
        return delays

    def retry_delay(self, failed_attempt: int) -> float:
        """Seconds to wait before the delivery that follows attempt ``failed_attempt``."""
        return self.retry_delays[min(failed_attempt, len(self.retry_delays)) - 1]
