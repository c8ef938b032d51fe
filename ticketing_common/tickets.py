"""Ticket codes: what a ticket's QR code says, signed so a door can tell a real one.

A code names one seat of one booking: ``TKT2.<booking_id>.<event_id>.<seat_id>.<signature>``,
the signature being the base64url HMAC-SHA256 (unpadded) of everything before it under
``TICKET_SIGNING_SECRET``. notification_service prints it (one QR code per seat) and
booking_service shows it and checks it in, both through this module, so the two can never
disagree about a code.

The first tickets carried one code per booking, ``TKT1.<booking_id>.<event_id>.<signature>``
(signed the same way); their PDFs are out there, so they still verify: such a code stands
for every seat of its booking (:attr:`TicketCode.seat_id` is None).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from ticketing_common.errors import BadRequest
from ticketing_common.seats import parse_seat_id

SEAT_CODE_VERSION = "TKT2"
BOOKING_CODE_VERSION = "TKT1"

_ID = r"[1-9][0-9]{0,17}"
_SIGNATURE = r"[A-Za-z0-9_-]{43}"  # 32 bytes of HMAC-SHA256, base64url without padding
_SEAT_CODE = re.compile(rf"TKT2\.({_ID})\.({_ID})\.([a-z0-9-]{{1,32}})\.({_SIGNATURE})")
_BOOKING_CODE = re.compile(rf"TKT1\.({_ID})\.({_ID})\.({_SIGNATURE})")
#: longer than any code this module signs: a scanner's garbage is refused before parsing
MAX_TICKET_CODE_LENGTH = 128


class InvalidTicketCode(BadRequest):
    code = "invalid_ticket_code"


@dataclass(frozen=True, slots=True)
class TicketCode:
    """What a genuine code names: one seat, or (a ``TKT1`` code) the whole booking."""

    booking_id: int
    event_id: int
    seat_id: str | None


def _signature(payload: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_ticket_code(booking_id: int, event_id: int, seat_id: str, secret: str) -> str:
    """The code of one seat of a booking: what its QR code encodes."""
    if parse_seat_id(seat_id) is None:
        raise ValueError(f"not a seat id: {seat_id!r}")
    payload = f"{SEAT_CODE_VERSION}.{booking_id}.{event_id}.{seat_id}"
    return f"{payload}.{_signature(payload, secret)}"


def sign_booking_code(booking_id: int, event_id: int, secret: str) -> str:
    """The first tickets' code, one per booking. Nothing prints it any more; tests and
    tools make one to check that the doors still take them."""
    payload = f"{BOOKING_CODE_VERSION}.{booking_id}.{event_id}"
    return f"{payload}.{_signature(payload, secret)}"


def verify_ticket_code(code: str, secret: str) -> TicketCode:
    """What a genuine code names; raise :class:`InvalidTicketCode` for anything else
    (malformed, an unknown version, a seat id that is not one, an edited or forged
    signature). Surrounding white space (a scanner's line end) is ignored."""
    text = code.strip()
    if len(text) > MAX_TICKET_CODE_LENGTH:
        raise InvalidTicketCode("not a ticket code")
    seat_match = _SEAT_CODE.fullmatch(text)
    if seat_match is not None:
        booking_id, event_id, seat_id, signature = seat_match.groups()
        if parse_seat_id(seat_id) is None:
            raise InvalidTicketCode("not a ticket code: no such seat id")
        payload = f"{SEAT_CODE_VERSION}.{booking_id}.{event_id}.{seat_id}"
    else:
        booking_match = _BOOKING_CODE.fullmatch(text)
        if booking_match is None:
            raise InvalidTicketCode("not a ticket code")
        booking_id, event_id, signature = booking_match.groups()
        seat_id = None
        payload = f"{BOOKING_CODE_VERSION}.{booking_id}.{event_id}"
    if not hmac.compare_digest(signature, _signature(payload, secret)):
        raise InvalidTicketCode("the ticket code's signature does not match")
    return TicketCode(booking_id=int(booking_id), event_id=int(event_id), seat_id=seat_id)
