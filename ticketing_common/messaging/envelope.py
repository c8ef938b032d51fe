"""The envelope every domain event travels in, and its decoding on the consumer side."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from ticketing_common.db import utcnow
from ticketing_common.messaging.contracts import CONTRACTS, Payload

CONTENT_TYPE = "application/json"


class Envelope(BaseModel):
    """``{message_id, type, occurred_at, producer, payload}`` (DESIGN §8).

    ``type`` is the routing key; ``producer`` is the service whose outbox held the
    message (the relay stamps it, since each outbox lives in its producer's database).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    message_id: uuid.UUID
    type: str
    occurred_at: datetime
    producer: str
    payload: dict[str, Any]


class InvalidMessage(Exception):
    """The body is not an envelope, or its payload does not fit the routing key's schema."""


def draft_envelope(routing_key: str, payload: Payload) -> dict[str, Any]:
    """The envelope as the outbox stores it: everything but ``producer``."""
    return {
        "message_id": str(uuid.uuid4()),
        "type": routing_key,
        "occurred_at": utcnow().isoformat(),
        "payload": payload.model_dump(mode="json"),
    }


def encode_envelope(stored: dict[str, Any], producer: str) -> bytes:
    return orjson.dumps({**stored, "producer": producer})


def decode_envelope(body: bytes, routing_key: str) -> tuple[Envelope, Payload]:
    """Parse and validate a delivery meant for ``routing_key``; raise :class:`InvalidMessage`."""
    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidMessage(f"not a valid envelope: {_summary(exc)}") from exc
    if envelope.type != routing_key:
        raise InvalidMessage(f"envelope type {envelope.type!r} on the {routing_key!r} queue")
    model = CONTRACTS[routing_key]
    try:
        payload = model.model_validate(envelope.payload)
    except ValidationError as exc:
        raise InvalidMessage(f"payload does not fit {model.__name__}: {_summary(exc)}") from exc
    return envelope, payload


def _summary(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
        for err in exc.errors()[:5]
    ]
    return "; ".join(parts)
