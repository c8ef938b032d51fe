"""Row 5: what the seat map of a 100,000-seat event costs (issue 17).

One organizer's event of 100,000 seats (80,000 normal, 15,000 VIP, 5,000 VVIP, 100 per
row), then through the gateway from one loopback address: the first read (the rendition
is built), full reads with gzip (the rendition re-served), and conditional reads with the
ETag (304, no body). Each kind's median time, its body size on the wire, and
event_service's CPU per read (its process's CPU ticks over the reads).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import httpx

from bench.prepare import Account, Gateway, create_event, event_body
from bench.procstats import cpu_seconds

SEATS = {"normal": 80_000, "vip": 15_000, "vvip": 5_000}
PER_ROW = 100
#: reads of each kind; the gateway's per-address burst (20) allows them without waiting
FULL_READS = 8
CONDITIONAL_READS = 8
#: the loopback address the reads come from (one of its own, away from the buyers')
READER_ADDRESS = "127.0.250.1"


@dataclass(frozen=True)
class Reads:
    median_ms: float
    wire_bytes: int
    cpu_ms_per_read: float


@dataclass(frozen=True)
class SeatMapRow:
    seats: int
    json_bytes: int
    first: Reads
    full: Reads
    conditional: Reads


def _reads(
    client: httpx.Client, path: str, headers: dict[str, str], count: int, pids: list[int]
) -> tuple[Reads, httpx.Response]:
    times, response = [], None
    before = cpu_seconds(pids)
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
    spent_ms = (cpu_seconds(pids) - before) * 1000
    assert response is not None
    wire = response.num_bytes_downloaded  # as sent: gzipped where the gateway gzips
    return Reads(statistics.median(times), wire, spent_ms / count), response


def measure_seat_map(gateway_url: str, organizer: Account, event_pids: list[int]) -> SeatMapRow:
    gateway = Gateway(gateway_url)
    body = event_body(
        "Seat map of 100,000",
        normal=SEATS["normal"],
        vip=SEATS["vip"],
        vvip=SEATS["vvip"],
        per_row=PER_ROW,
    )
    event_id = asyncio.run(create_event(gateway, organizer, body))
    path = f"/api/events/{event_id}/seats"
    transport = httpx.HTTPTransport(local_address=READER_ADDRESS)
    with httpx.Client(base_url=gateway_url, transport=transport, timeout=60) as client:
        gzip = {"Accept-Encoding": "gzip"}
        first, response = _reads(client, path, gzip, 1, event_pids)
        response.raise_for_status()
        json_bytes = len(response.content)  # decoded
        full, response = _reads(client, path, gzip, FULL_READS, event_pids)
        response.raise_for_status()
        etag = response.headers["etag"]
        conditional, response = _reads(
            client, path, {**gzip, "If-None-Match": etag}, CONDITIONAL_READS, event_pids
        )
        if response.status_code != 304:
            raise RuntimeError(f"If-None-Match answered {response.status_code}, not 304")
    return SeatMapRow(sum(SEATS.values()), json_bytes, first, full, conditional)
