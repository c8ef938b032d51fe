"""event_service settings: the shared ones plus this service's own."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator

from ticketing_common.settings import ServiceSettings


class EventSettings(ServiceSettings):
    service_name: str = "event_service"
    port: int = Field(3003, alias="PORT")
    db_name: str = Field("event_db", alias="DB_NAME")

    currency: str = Field("ETB", alias="CURRENCY", pattern=r"^[A-Z]{3}$")
    # Public reads come from Redis; an organizer's update invalidates them at once, the
    # TTL only bounds how long an entry of a quiet event lives.
    event_cache_ttl_seconds: int = Field(60, alias="EVENT_CACHE_TTL_SECONDS", ge=1)
    event_list_cache_ttl_seconds: int = Field(10, alias="EVENT_LIST_CACHE_TTL_SECONDS", ge=1)
    #: how long a shared cache (the gateway) may serve the public event list as it is:
    #: availability figures in the list may then lag the truth by this much
    public_list_max_age_seconds: int = Field(1, alias="PUBLIC_LIST_MAX_AGE_SECONDS", ge=0, le=60)
    max_seats_per_hold: int = Field(100, alias="MAX_SEATS_PER_HOLD", ge=1, le=1000)
    max_hold_ttl_seconds: int = Field(3600, alias="MAX_HOLD_TTL_SECONDS", ge=1)
    #: once a seat of an event is held or sold, its date may not move closer to now than
    #: this (nor into the past): buyers keep time to hear of it and to cancel
    reschedule_min_notice_seconds: int = Field(
        24 * 3600, alias="RESCHEDULE_MIN_NOTICE_SECONDS", ge=0, le=365 * 24 * 3600
    )
    #: memory each process gives the seat maps it serves (their latest renditions, JSON and
    #: gzip; a 100,000-seat map takes ~10 MB), least recently served dropped first
    seat_map_cache_bytes: int = Field(64 * 1024 * 1024, alias="SEAT_MAP_CACHE_BYTES", ge=0)
    # How long a request waits for another replica that is rebuilding an event's seat gate.
    gate_rebuild_wait_seconds: float = Field(10.0, alias="GATE_REBUILD_WAIT_SECONDS", gt=0)
    # The on-sale's waiting room (issue 20). The default rate is about what scripts/bench
    # measured a 2-core machine to sell at (row 3: 27-40 purchases/s, 1,600-2,400 a minute,
    # with two seats each); an organizer may set its own.
    queue_admit_per_minute: int = Field(1200, alias="QUEUE_ADMIT_PER_MINUTE", ge=1, le=60_000)
    #: how long an admitted buyer's pass lasts; then the buyer must queue again
    queue_pass_ttl_seconds: int = Field(300, alias="QUEUE_PASS_TTL_SECONDS", ge=10, le=24 * 3600)
    #: how often the rooms admit (every replica ticks; the rate holds however many do)
    queue_tick_seconds: float = Field(1.0, alias="QUEUE_TICK_SECONDS", gt=0, le=60)
    # Waiting lists of sold-out classes (issue 19): how long an offer's pending booking
    # holds the freed seats for the buyer, and how often every replica makes offers.
    waitlist_offer_ttl_seconds: int = Field(
        1800, alias="WAITLIST_OFFER_TTL_SECONDS", ge=10, le=24 * 3600
    )
    waitlist_tick_seconds: float = Field(1.0, alias="WAITLIST_TICK_SECONDS", gt=0, le=3600)
    #: the link an offer's email gives to pay ({base}: PUBLIC_BASE_URL; {booking_id})
    waitlist_offer_url: str = Field(
        "{base}/api/bookings/{booking_id}", alias="WAITLIST_OFFER_URL", max_length=500
    )

    @model_validator(mode="after")
    def _offer_fits_a_hold(self) -> EventSettings:
        if self.waitlist_offer_ttl_seconds > self.max_hold_ttl_seconds:
            raise ValueError("WAITLIST_OFFER_TTL_SECONDS may not exceed MAX_HOLD_TTL_SECONDS")
        return self


@lru_cache
def get_settings() -> EventSettings:
    return EventSettings()
