"""Seat ids: ``<class>-<row>-<number>`` (``vip-1-4``), rows of ``seats_per_row`` per class.

A seat's *index* within its class (0-based, row by row) orders the seat gate's available
sets, so a count hold takes the lowest free seats, front rows first. The Lua scripts
(``lua/prelude.lua``) compute ids and indexes the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

TicketClass = Literal["normal", "vip", "vvip"]
TICKET_CLASSES: tuple[TicketClass, ...] = ("normal", "vip", "vvip")

_SEAT_ID = re.compile(r"^(normal|vip|vvip)-([1-9][0-9]{0,5})-([1-9][0-9]{0,3})$")


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
    return seat_index(seat, seats_per_row) < capacity[seat.ticket_class]
