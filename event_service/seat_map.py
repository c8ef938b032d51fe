"""The public seat map: rendered once per seat version, patched per change, gzipped once.

A 100,000-seat map is 9 MB of JSON: building it per request cost ~60 ms of CPU. Here each
process keeps the latest rendition of each event (LRU, bounded by ``SEAT_MAP_CACHE_BYTES``)
with the seat gate's *seat version*, which every script that changes a seat's status bumps
in the same atomic step (``lua/prelude.lua``). A request asks the gate, in one round trip
that also purges expired holds, what changed since its rendition's version:

* nothing: the rendition is served as it is (``304 Not Modified`` to a client that sends
  its ``ETag`` back in ``If-None-Match``);
* some seats: only the pieces (512 seats each) that hold them are redone. Every seat's
  status sits in a fixed-width slot (``held"}`` is padded with JSON whitespace to the width
  of ``available"}``), so a change rewrites 11 bytes and moves nothing;
* a new layout, or a rendition older than the gate's change log: rendered in full.

So a map is never stale: it shows every hold, release, expiry and sale that completed
before the request arrived. Requests that arrive while an event's map is being brought up
to date wait for that and use it if the gate was asked after they arrived, else take the
next turn together. The gzip is kept in pieces too (each deflated on its own, flushed to a
byte boundary), so a change recompresses one piece, not 9 MB; the gateway passes it on.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from starlette.datastructures import Headers
from starlette.responses import Response

from event_service.seat_gate import SeatGate, SeatMapUpdate
from ticketing_common.seats import TICKET_CLASSES

#: the status slot of every seat: ``available"}`` and the others padded to its width
_STATUS_SLOT = {
    "available": b'available"}',
    "held": b'held"}     ',
    "sold": b'sold"}     ',
}
_SLOT_WIDTH = len(_STATUS_SLOT["available"])
#: seats per piece of a rendition (~45 KB of JSON): a change redoes one piece and its gzip
_SEATS_PER_PIECE = 512
#: maps with more seats are rendered on a worker thread (zlib runs there without the GIL)
_THREAD_FROM_SEATS = 2_000
_GZIP_LEVEL = 1  # 9 MB of seat JSON -> 0.7 MB; level 6 saves 15 % for 4x the CPU
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no time, any OS
_DEFLATE_END = b"\x03\x00"  # an empty final block
_TAIL = b"]}"
_MEDIA_TYPE = "application/json"


def _deflate(piece: bytes) -> bytes:
    """``piece`` as raw deflate blocks that end byte-aligned and refer to nothing before
    them: deflated pieces concatenate into one stream, and each can be redone alone."""
    compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, -15)
    return compressor.compress(piece) + compressor.flush(zlib.Z_FULL_FLUSH)


@dataclass(frozen=True, slots=True, eq=False)
class _Layout:
    """Where each seat of a layout sits in the map: its piece, and its status slot there."""

    seats_per_row: int
    capacity: Mapping[str, int]
    first_index: Mapping[str, int]
    #: for each seat in map order, the offset of its status slot within its piece
    slots: array[int]

    def index_of(self, seat_id: str) -> int:
        ticket_class, _, place = seat_id.partition("-")
        row, _, number = place.partition("-")
        in_class = (int(row) - 1) * self.seats_per_row + int(number) - 1
        return self.first_index[ticket_class] + in_class


def _all_available(seats_per_row: int, capacity: Mapping[str, int]) -> tuple[_Layout, list[bytes]]:
    """Every seat of the layout, available, as JSON objects in pieces (commas included)."""
    items = []
    for ticket_class in TICKET_CLASSES:
        for index in range(capacity[ticket_class]):
            row, number = index // seats_per_row + 1, index % seats_per_row + 1
            items.append(
                f'{{"seat_id":"{ticket_class}-{row}-{number}","ticket_class":"{ticket_class}",'
                f'"row":{row},"number":{number},"status":"available"}},'
            )
    items[-1] = items[-1][:-1]  # no comma after the last seat
    slots = array("I")
    pieces = []
    for first in range(0, len(items), _SEATS_PER_PIECE):
        piece = items[first : first + _SEATS_PER_PIECE]
        # A seat's slot ends where its object does: before its comma, if it has one.
        ends = itertools.accumulate(len(item) for item in piece)
        slots.extend(
            end - _SLOT_WIDTH - item.endswith(",") for end, item in zip(ends, piece, strict=True)
        )
        pieces.append("".join(piece).encode())
    first_index: dict[str, int] = dict(
        zip(
            TICKET_CLASSES,
            itertools.accumulate((capacity[c] for c in TICKET_CLASSES[:-1]), initial=0),
            strict=True,
        )
    )
    return _Layout(seats_per_row, dict(capacity), first_index, slots), pieces


class SeatMapRendition:
    """An event's seat map as the gate was at ``version``: the JSON in pieces, each piece
    deflated, and the gzip they make."""

    __slots__ = ("deflated", "event_id", "gzipped", "head", "layout", "pieces", "version")

    def __init__(
        self,
        event_id: int,
        version: str,
        layout: _Layout,
        counts: tuple[int, int],
        pieces: Sequence[bytes],
        deflated: Sequence[bytes],
    ) -> None:
        held, sold = counts
        available = sum(layout.capacity.values()) - held - sold
        self.event_id = event_id
        self.version = version
        self.layout = layout
        self.pieces = tuple(pieces)
        self.head = (
            b'{"event_id":%d,"seats_per_row":%d,"available":%d,"held":%d,"sold":%d,"seats":['
            % (event_id, layout.seats_per_row, available, held, sold)
        )
        crc = zlib.crc32(self.head)
        for piece in self.pieces:
            crc = zlib.crc32(piece, crc)
        crc = zlib.crc32(_TAIL, crc)
        size = len(self.head) + sum(map(len, self.pieces)) + len(_TAIL)
        self.gzipped = b"".join(
            (
                _GZIP_HEADER,
                _deflate(self.head),
                *deflated,
                _deflate(_TAIL),
                _DEFLATE_END,
                struct.pack("<II", crc, size & 0xFFFFFFFF),
            )
        )
        self.deflated = tuple(deflated)

    @property
    def etag(self) -> str:
        return f'W/"seats-{self.event_id}-{self.version}"'

    @property
    def body(self) -> bytes:
        """The JSON (joined per call: most clients take the gzip)."""
        return b"".join((self.head, *self.pieces, _TAIL))

    @property
    def nbytes(self) -> int:
        pieces = sum(map(len, self.pieces)) + sum(map(len, self.deflated))
        return pieces + len(self.gzipped) + self.layout.slots.itemsize * len(self.layout.slots)


def _patched(layout: _Layout, pieces: list[bytes], statuses: Mapping[str, str]) -> list[int]:
    """Rewrite the status slots of ``statuses``'s seats in ``pieces``; the pieces changed."""
    patches: dict[int, list[tuple[int, bytes]]] = {}
    for seat_id, status in statuses.items():
        index = layout.index_of(seat_id)
        patches.setdefault(index // _SEATS_PER_PIECE, []).append(
            (layout.slots[index], _STATUS_SLOT[status])
        )
    for number, changes in patches.items():
        piece = bytearray(pieces[number])
        for slot, text in changes:
            piece[slot : slot + _SLOT_WIDTH] = text
        pieces[number] = bytes(piece)
    return list(patches)


def render_full(event_id: int, update: SeatMapUpdate) -> SeatMapRendition:
    layout, pieces = _all_available(update.seats_per_row, update.capacity)
    _patched(layout, pieces, dict.fromkeys(update.held, "held"))
    _patched(layout, pieces, dict.fromkeys(update.sold, "sold"))
    deflated = [_deflate(piece) for piece in pieces]
    counts = (update.held_count, update.sold_count)
    return SeatMapRendition(event_id, update.version, layout, counts, pieces, deflated)


def render_changes(previous: SeatMapRendition, update: SeatMapUpdate) -> SeatMapRendition:
    """``previous`` with the pieces of the seats that changed since redone (``previous``
    stays as it is: responses may still be sending it)."""
    pieces = list(previous.pieces)
    deflated = list(previous.deflated)
    for number in _patched(previous.layout, pieces, update.changed):
        deflated[number] = _deflate(pieces[number])
    counts = (update.held_count, update.sold_count)
    return SeatMapRendition(
        previous.event_id, update.version, previous.layout, counts, pieces, deflated
    )


@dataclass(eq=False)
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    rendition: SeatMapRendition | None = None
    #: when (on the cache's clock) the gate was last asked about this rendition
    checked_at: int = -1
    users: int = 0


class SeatMaps:
    """The latest seat map rendition of each event this process served (LRU by bytes)."""

    def __init__(self, gate: SeatGate, *, max_bytes: int) -> None:
        self._gate = gate
        self._max_bytes = max_bytes
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._bytes = 0
        self._clock = itertools.count()

    async def current(self, event_id: int) -> SeatMapRendition:
        """The map as the gate is now: it includes every change made before this call."""
        arrived = next(self._clock)
        entry = self._entries.get(event_id)
        if entry is None:
            entry = self._entries[event_id] = _Entry()
        entry.users += 1
        try:
            async with entry.lock:
                if entry.rendition is not None and entry.checked_at > arrived:
                    return entry.rendition
                asked = next(self._clock)
                since = entry.rendition.version if entry.rendition is not None else ""
                update = await self._gate.seat_map_update(event_id, since)
                rendition = await self._bring_up_to_date(event_id, entry.rendition, update)
                entry.checked_at = asked
                self._keep(event_id, entry, rendition)
                return rendition
        finally:
            entry.users -= 1
            if entry.users == 0 and entry.rendition is None:
                self._forget(event_id, entry)  # no such event, or the gate failed

    async def _bring_up_to_date(
        self, event_id: int, previous: SeatMapRendition | None, update: SeatMapUpdate
    ) -> SeatMapRendition:
        # Without a rendition the gate was asked for the full map.
        if previous is None or update.kind == "full":
            seats = sum(update.capacity.values())
            if seats < _THREAD_FROM_SEATS:
                return render_full(event_id, update)
            return await asyncio.to_thread(render_full, event_id, update)
        if update.kind == "same":
            return previous
        if len(previous.layout.slots) < _THREAD_FROM_SEATS:
            return render_changes(previous, update)
        return await asyncio.to_thread(render_changes, previous, update)

    def _keep(self, event_id: int, entry: _Entry, rendition: SeatMapRendition) -> None:
        if entry.rendition is not None:
            self._bytes -= entry.rendition.nbytes
        entry.rendition = rendition
        self._bytes += rendition.nbytes
        if self._entries.get(event_id) is entry:
            self._entries.move_to_end(event_id)
        else:  # evicted while it was being rendered: not kept
            self._bytes -= rendition.nbytes
            return
        while self._bytes > self._max_bytes and len(self._entries) > 1:
            oldest_id, oldest = next(iter(self._entries.items()))
            if oldest is entry:
                break
            del self._entries[oldest_id]
            if oldest.rendition is not None:
                self._bytes -= oldest.rendition.nbytes
                oldest.rendition = None

    def _forget(self, event_id: int, entry: _Entry) -> None:
        if self._entries.get(event_id) is entry:
            del self._entries[event_id]


def _etags(header: str) -> Sequence[str]:
    """The entity tags of an ``If-None-Match`` header, weak or strong (RFC 9110 13.1.2
    compares them weakly)."""
    return [tag.strip().removeprefix("W/") for tag in header.split(",")]


def _accepts_gzip(header: str) -> bool:
    for coding in header.split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
            try:
                return float(quality) > 0
            except ValueError:
                return False
    return False


def seat_map_response(rendition: SeatMapRendition, request_headers: Headers) -> Response:
    """200 with the map (gzipped when the client takes it), or 304 if the client has it."""
    headers = {"ETag": rendition.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None:
        wanted = _etags(if_none_match)
        if "*" in wanted or rendition.etag.removeprefix("W/") in wanted:
            return Response(status_code=304, headers=headers)
    if _accepts_gzip(request_headers.get("accept-encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return Response(rendition.gzipped, media_type=_MEDIA_TYPE, headers=headers)
    return Response(rendition.body, media_type=_MEDIA_TYPE, headers=headers)
