"""Seat ids and layouts, the one definition both event_service and booking_service use.

A seat id is ``<class>-<row>-<number>`` (``vip-1-4``); a class's seats fill rows of
``seats_per_row`` from row 1, seat 1. A seat's *index* within its class (0-based, row by
row) orders the seat gate's available sets, so a count hold takes the lowest free seats,
front rows first. The Lua scripts (``event_service/lua/prelude.lua``) compute ids and
indexes the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

TicketClass = Literal["normal", "vip", "vvip"]
TICKET_CLASSES: tuple[TicketClass, ...] = ("normal", "vip", "vvip")

#: the most seats a class (and an event) may have, and the widest row
MAX_SEATS_PER_CLASS = 100_000
MAX_SEATS_PER_ROW = 1000

#: rows run to 100,000 (one seat per row at most capacity), numbers to 1,000
SEAT_ID_PATTERN = r"^(normal|vip|vvip)-([1-9][0-9]{0,5})-([1-9][0-9]{0,3})$"
_SEAT_ID = re.compile(SEAT_ID_PATTERN)
#: the longest well-formed seat id
SEAT_ID_MAX_LENGTH = len("normal-100000-1000")


@dataclass(frozen=True, slots=True)
class Seat:
    seat_id: str
    ticket_class: TicketClass
    row: int
    number: int


def parse_seat_id(value: str) -> Seat | None:
    """The seat a well-formed id names, or None; says nothing about whether it exists."""
    match = _SEAT_ID.match(value)
    if match is None:
        return None
    ticket_class = cast(TicketClass, match.group(1))
    return Seat(value, ticket_class, int(match.group(2)), int(match.group(3)))


def seat_index(seat: Seat, seats_per_row: int) -> int:
    return (seat.row - 1) * seats_per_row + seat.number - 1


def seat_exists(seat: Seat, seats_per_row: int, capacity: Mapping[str, int]) -> bool:
    if seat.number > seats_per_row:
        return False
    return seat_index(seat, seats_per_row) < capacity.get(seat.ticket_class, 0)


def seat_at(ticket_class: TicketClass, index: int, seats_per_row: int) -> Seat:
    """The seat at ``index`` (0-based) of its class."""
    row, offset = divmod(index, seats_per_row)
    return Seat(f"{ticket_class}-{row + 1}-{offset + 1}", ticket_class, row + 1, offset + 1)
