"""The PDF ticket: one QR code per seat, each that seat's signed ticket code (the codes
themselves: ticketing_common/tests/test_tickets.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import pytest
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth

from notification_service import ticket_store
from notification_service.settings import NotificationSettings
from notification_service.tests.pdf import embedded_fonts, pdf_fonts, pdf_text, qr_codes
from notification_service.ticket_store import render_ticket
from notification_service.tickets import (
    DEFAULT_TICKET_FONT_DIRS,
    TicketDetails,
    TicketSeat,
    render_ticket_pdf,
    ticket_fonts,
)
from ticketing_common.tickets import sign_ticket_code, verify_ticket_code

SECRET = "ticket-test-secret"


def details(**overrides: object) -> TicketDetails:
    seats = [
        TicketSeat("vip-1-4", "vip", 1, 4, Decimal("250.00")),
        TicketSeat("vip-1-5", "vip", 1, 5, Decimal("250.00")),
        TicketSeat("normal-2-10", "normal", 2, 10, Decimal("100.00")),
    ]
    base = TicketDetails(
        booking_id=4821,
        event_id=17,
        event_title="Ethio-Jazz Night & Friends <live>",
        event_date=datetime(2026, 12, 12, 19, 30, tzinfo=UTC),
        venue="Millennium Hall, Addis Ababa",
        seats=seats,
        total_amount=Decimal("1600.00"),
        currency="ETB",
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def seat_codes(ticket: TicketDetails) -> list[str]:
    """The codes the ticket's QR codes must encode, one per seat, sorted."""
    return sorted(
        sign_ticket_code(ticket.booking_id, ticket.event_id, seat.seat_id, SECRET)
        for seat in ticket.seats
    )


def test_the_pdf_shows_event_venue_date_reference_every_seat_and_the_amount() -> None:
    text = pdf_text(render_ticket_pdf(details(), SECRET))

    assert "Ethio-Jazz Night & Friends <live>" in " ".join(text.split())
    assert "Millennium Hall, Addis Ababa" in text
    assert "Saturday 12 December 2026, 19:30 UTC" in text
    assert "BK-00004821" in text
    for seat_id in ("vip-1-4", "vip-1-5", "normal-2-10"):
        assert seat_id in text
    assert "VIP" in text
    assert "NORMAL" in text
    assert "ETB 1,600.00" in text


def test_each_seat_has_a_qr_code_of_its_own_signed_code_labelled_with_the_seat() -> None:
    pdf = render_ticket_pdf(details(), SECRET)

    codes = qr_codes(pdf)

    assert sorted(codes) == seat_codes(details())
    assert {verify_ticket_code(code, SECRET).seat_id for code in codes} == {
        "vip-1-4",
        "vip-1-5",
        "normal-2-10",
    }
    assert {verify_ticket_code(code, SECRET).booking_id for code in codes} == {4821}
    lines = [line.strip() for line in pdf_text(pdf).splitlines()]
    for label in ("Row 1, seat 4", "Row 1, seat 5", "Row 2, seat 10"):
        assert label in lines


def rows_of_seats(rows: int) -> TicketDetails:
    """A booking of ``rows`` whole rows of ten Normal seats at 100.00."""
    seats = [
        TicketSeat(f"normal-{r}-{n}", "normal", r, n, Decimal("100.00"))
        for r in range(1, rows + 1)
        for n in range(1, 11)
    ]
    return details(seats=seats, total_amount=Decimal(100 * len(seats)))


def test_a_booking_with_many_seats_flows_onto_further_pages() -> None:
    many = rows_of_seats(10)
    seats = many.seats

    pdf = render_ticket_pdf(many, SECRET)

    text = pdf_text(pdf)
    assert {seat.seat_id for seat in seats} <= set(text.split())
    assert "ETB 10,000.00" in text
    assert sorted(qr_codes(pdf)) == seat_codes(many)


def test_rendering_the_same_ticket_twice_gives_the_same_bytes() -> None:
    assert render_ticket_pdf(details(), SECRET) == render_ticket_pdf(details(), SECRET)


# ------------------------------------------------------------------- where things print


class PrintedLine(NamedTuple):
    left: float
    baseline: float
    right: float  # measured in the line's fonts: Helvetica only, in these tests
    size: float
    text: str


class LineCollector:
    """A page's lines of text as pypdf's text extraction visits them: a line runs from one
    text chunk to the next that ends it (a bold label and its value are one line)."""

    def __init__(self) -> None:
        self.lines: list[PrintedLine] = []
        self._parts: list[tuple[float, float, float, float, str]] = []  # x, y, width, size

    def __call__(
        self,
        text: str,
        cm: list[float],
        tm: list[float],
        font: Mapping[str, object] | None,
        size: float,
    ) -> None:
        if not text:
            return
        part = text.rstrip("\n")
        name = str(font["/BaseFont"]).lstrip("/") if font else "Helvetica"
        x = cm[0] * tm[4] + cm[2] * tm[5] + cm[4]
        y = cm[1] * tm[4] + cm[3] * tm[5] + cm[5]
        self._parts.append((x, y, stringWidth(part, name, size), size, part))
        if text.endswith("\n"):
            x, y, _, size, _ = self._parts[0]
            width = sum(p[2] for p in self._parts)
            line = "".join(p[4] for p in self._parts).strip()
            if line:
                self.lines.append(PrintedLine(x, y, x + width, size, line))
            self._parts.clear()


def printed_lines(pdf: bytes) -> list[list[PrintedLine]]:
    """Each page's lines of text, and where they print."""
    pages: list[list[PrintedLine]] = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        collect = LineCollector()
        page.extract_text(visitor_text=collect)
        pages.append(collect.lines)
    return pages


def assert_inside_the_margins(pages: list[list[PrintedLine]]) -> None:
    width, height = A4
    for lines in pages:
        for line in lines:
            assert line.left >= 15 * mm, line
            assert line.right <= width - 15 * mm, line
            assert 15 * mm <= line.baseline <= height - 15 * mm, line


LONG_TITLE = (
    "The Grand Ethio-Jazz & Tizita Revival Night with Friends from Addis, Harar, Gondar "
    "and Bahir Dar <live>"
)
LONG_VENUE = (
    "Millennium Hall, Bole Sub-City, Airport Road, next to the Edna Mall and the old "
    "railway station, Addis Ababa, Ethiopia"
)


def test_a_long_title_and_venue_wrap_onto_lines_inside_the_margins() -> None:
    pdf = render_ticket_pdf(details(event_title=LONG_TITLE, venue=LONG_VENUE), SECRET)

    text = " ".join(pdf_text(pdf).split())
    assert LONG_TITLE in text
    assert f"Venue: {LONG_VENUE}" in text
    pages = printed_lines(pdf)
    assert len(pages) == 1
    title = [line for line in pages[0] if line.size == 22]
    assert len(title) >= 2
    assert " ".join(line.text for line in title) == LONG_TITLE
    assert [line.text for line in pages[0]].index("Date: Saturday 12 December 2026, 19:30 UTC") > 0
    assert_inside_the_margins(pages)


def test_a_word_too_long_for_a_line_is_cut_and_line_breaks_print_as_spaces() -> None:
    word = "Supercalifragilisticexpialidocious" * 2

    pdf = render_ticket_pdf(details(event_title=f" {word}\n  Live  "), SECRET)

    pages = printed_lines(pdf)
    title = [line for line in pages[0] if line.size == 22]
    assert len(title) == 2
    assert "".join(line.text for line in title) == f"{word} Live"
    assert_inside_the_margins(pages)


def test_the_seat_table_goes_on_under_its_heading_and_each_code_keeps_its_label() -> None:
    many = rows_of_seats(4)
    seats = many.seats

    pdf = render_ticket_pdf(many, SECRET)

    heading = ["Seat", "Class", "Row", "Number", "Price"]
    table_rows: list[list[str]] = []
    table_pages = 0
    for page in PdfReader(io.BytesIO(pdf)).pages:
        lines = [line.strip() for line in page.extract_text().splitlines()]
        if "ETB 100.00" in lines:  # the table is on this page: under its heading
            table_pages += 1
            start = lines.index("Seat")
            assert lines[start : start + 5] == heading
            assert lines.index("ETB 100.00") > start
            cells = lines[start + 5 :]
            table_rows += [cells[i : i + 5] for i in range(0, len(cells), 5)]
        # Each QR code on a page decodes, and its seat's label is on that page too.
        one_page = io.BytesIO()
        writer = PdfWriter()
        writer.add_page(page)
        writer.write(one_page)
        labels = {line for line in lines if line.startswith("Row ")}
        for code in qr_codes(one_page.getvalue()):
            seat = next(s for s in seats if s.seat_id == verify_ticket_code(code, SECRET).seat_id)
            assert seat.seat_id in lines
            assert f"Row {seat.row}, seat {seat.number}" in labels
    assert table_pages >= 2
    assert table_rows == [
        [s.seat_id, "NORMAL", str(s.row), str(s.number), "ETB 100.00"] for s in seats
    ] + [["Total paid", "ETB 4,000.00"]]
    assert sorted(qr_codes(pdf)) == seat_codes(many)
    assert_inside_the_margins(printed_lines(pdf))


# ---------------------------------------------------------------- scripts other than Latin

AMHARIC_TITLE = "የሙዚቃ ኮንሰርት"  # "music concert"
CYRILLIC_VENUE = "Москва Арена"
GREEK_VENUE = "Θέατρο Αθηνών"
AMHARIC_CLASS = "መደበኛ"  # "regular"


def require_ticket_fonts() -> None:
    """These tests need the Debian fonts that scripts/bootstrap.sh installs."""
    fonts = ticket_fonts()
    found = {font.name for font in fonts.regular}
    if not {"DejaVuSans", "AbyssinicaSIL"} <= found:
        pytest.fail(
            f"ticket fonts found: {sorted(found)}; install fonts-dejavu-core and "
            "fonts-sil-abyssinica (scripts/bootstrap.sh)"
        )


def unicode_details() -> TicketDetails:
    return details(
        event_title=AMHARIC_TITLE,
        venue=f"{CYRILLIC_VENUE}, {GREEK_VENUE}",
        seats=[
            TicketSeat("vip-1-4", "vip", 1, 4, Decimal("250.00")),
            TicketSeat("normal-2-10", AMHARIC_CLASS, 2, 10, Decimal("100.00")),
        ],
        total_amount=Decimal("350.00"),
    )


def test_an_amharic_title_and_a_cyrillic_and_greek_venue_print_as_written() -> None:
    require_ticket_fonts()

    pdf = render_ticket_pdf(unicode_details(), SECRET)

    lines = pdf_text(pdf).splitlines()
    assert AMHARIC_TITLE in lines
    assert f"Venue: {CYRILLIC_VENUE}, {GREEK_VENUE}" in lines
    assert AMHARIC_CLASS in lines
    assert "ETB 350.00" in lines
    assert sorted(qr_codes(pdf)) == seat_codes(unicode_details())


def test_the_pdf_embeds_abyssinica_for_ethiopic_dejavu_for_cyrillic_and_greek_only() -> None:
    require_ticket_fonts()

    pdf = render_ticket_pdf(unicode_details(), SECRET)

    assert pdf_fonts(pdf) == {"AbyssinicaSIL-Regular", "DejaVuSans", "Helvetica", "Helvetica-Bold"}
    assert embedded_fonts(pdf) == {"AbyssinicaSIL-Regular", "DejaVuSans"}


def test_a_title_mixing_ethiopic_and_cyrillic_prints_both() -> None:
    require_ticket_fonts()
    title = f"{AMHARIC_TITLE} / {CYRILLIC_VENUE}"

    pdf = render_ticket_pdf(details(event_title=title), SECRET)

    assert title in " ".join(pdf_text(pdf).split())  # the title wraps
    assert {"AbyssinicaSIL-Regular", "DejaVuSans-Bold"} <= pdf_fonts(pdf)


def test_a_latin_only_ticket_embeds_no_font_stays_small_and_its_qr_code_decodes() -> None:
    """Helvetica, which every PDF reader has: a 10,000-seat on-sale stores 40 MB of tickets,
    not 450 MB of embedded font subsets."""
    require_ticket_fonts()

    pdf = render_ticket_pdf(details(), SECRET)

    assert pdf_fonts(pdf) == {"Helvetica", "Helvetica-Bold"}
    assert embedded_fonts(pdf) == set()
    assert len(pdf) < 8_000  # three seats, three QR codes
    assert "Ethio-Jazz Night & Friends <live>" in " ".join(pdf_text(pdf).split())
    assert sorted(qr_codes(pdf)) == seat_codes(details())


def test_a_ticket_in_other_scripts_renders_to_the_same_bytes_every_time() -> None:
    require_ticket_fonts()

    first = render_ticket_pdf(unicode_details(), SECRET)

    assert render_ticket_pdf(unicode_details(), SECRET) == first


def test_each_run_takes_the_first_font_with_all_its_characters() -> None:
    require_ticket_fonts()
    fonts = ticket_fonts()

    assert fonts.runs("Addis Ababa, Café Olé") == [("Helvetica", "Addis Ababa, Café Olé")]
    assert fonts.runs(CYRILLIC_VENUE) == [("DejaVuSans", CYRILLIC_VENUE)]
    assert fonts.runs(AMHARIC_TITLE) == [("AbyssinicaSIL", AMHARIC_TITLE)]
    # Abyssinica SIL has no bold face
    assert fonts.runs(AMHARIC_TITLE, bold=True) == [("AbyssinicaSIL", AMHARIC_TITLE)]
    assert fonts.runs(GREEK_VENUE, bold=True) == [("DejaVuSans-Bold", GREEK_VENUE)]
    # No font has both scripts: the one with most of the characters, the rest in their own.
    assert fonts.runs(f"{AMHARIC_TITLE} Мир") == [
        ("AbyssinicaSIL", f"{AMHARIC_TITLE} "),
        ("DejaVuSans", "Мир"),
    ]
    assert fonts.runs("Teddy Afro", bold=True) == [("Helvetica-Bold", "Teddy Afro")]


def test_the_fonts_are_loaded_once_per_process() -> None:
    require_ticket_fonts()

    assert ticket_fonts() is ticket_fonts()
    assert ticket_fonts([*DEFAULT_TICKET_FONT_DIRS]) is ticket_fonts()
    # Another list of folders finding the same files shares the fonts already loaded.
    again = ticket_fonts(reversed(DEFAULT_TICKET_FONT_DIRS))
    assert again is not ticket_fonts()
    assert all(a is b for a, b in zip(again.regular, ticket_fonts().regular, strict=True))


def test_without_the_font_files_a_latin_ticket_falls_back_to_helvetica(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="notification.tickets"):
        pdf = render_ticket_pdf(details(), SECRET, font_dirs=[tmp_path])
        render_ticket_pdf(details(), SECRET, font_dirs=[tmp_path])

    assert pdf_fonts(pdf) == {"Helvetica", "Helvetica-Bold"}
    text = pdf_text(pdf)
    assert "Ethio-Jazz Night & Friends <live>" in " ".join(text.split())
    assert "ETB 1,600.00" in text
    assert sorted(qr_codes(pdf)) == seat_codes(details())
    warnings = [r for r in caplog.records if "no ticket fonts found" in r.getMessage()]
    assert len(warnings) == 1, "the missing fonts are reported once, not on every ticket"


async def test_the_service_renders_with_the_fonts_from_ticket_font_dirs(tmp_path: Path) -> None:
    details_ = unicode_details()
    without = NotificationSettings(TICKET_FONT_DIRS=[tmp_path])

    fallback = pdf_fonts(await render_ticket(details_, without))
    assert {"Helvetica", "Helvetica-Bold"} <= fallback
    assert not {"AbyssinicaSIL-Regular", "DejaVuSans"} & fallback

    require_ticket_fonts()
    assert "AbyssinicaSIL-Regular" in pdf_fonts(
        await render_ticket(details_, NotificationSettings())
    )


async def test_an_on_sale_renders_at_most_two_tickets_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    busy, most = 0, 0
    lock = threading.Lock()

    def counting(*args: object) -> bytes:
        nonlocal busy, most
        with lock:
            busy += 1
            most = max(most, busy)
        time.sleep(0.05)
        with lock:
            busy -= 1
        return b"%PDF"

    monkeypatch.setattr(ticket_store, "render_ticket_pdf", counting)
    pdfs = await asyncio.gather(
        *(render_ticket(unicode_details(), NotificationSettings()) for _ in range(12))
    )

    assert pdfs == [b"%PDF"] * 12
    assert most == ticket_store.RENDERS_AT_ONCE == 2
