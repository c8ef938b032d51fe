"""The ticket: the PDF that carries one QR code per seat, each a signed ticket code.

Each seat's code is :func:`ticketing_common.tickets.sign_ticket_code`'s
``TKT2.<booking_id>.<event_id>.<seat_id>.<signature>``, the one booking_service shows and
checks in at the door: one QR code admits one person to one seat, once.

Text in Western European scripts is set in Helvetica, one of the fonts every PDF reader
carries, so nothing is embedded for it. Names and titles in other scripts print as written
in TrueType fonts: DejaVu Sans (Debian ``fonts-dejavu-core``: Greek, Cyrillic and more) and
Abyssinica SIL (``fonts-sil-abyssinica``: Ethiopic, for Amharic), looked for under
``TICKET_FONT_DIRS`` and registered with reportlab once per process, on the first ticket;
only the characters a ticket uses are embedded. Each run of text is set in the first font
that has every one of its characters. Embedding DejaVu for Latin text made every ticket
45 KB instead of 4 KB and cost about 40 % of its rendering time (subsetting, in Python):
under an on-sale that is hundreds of megabytes of PDFs and a core of CPU.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import zxingcpp
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ticketing_common.tickets import sign_ticket_code

logger = logging.getLogger("notification.tickets")

# Page streams as compressed binary, not also ASCII85-encoded: reportlab encodes ASCII85 in
# pure Python (about 0.5 ms a ticket) for a PDF that travels base64 in the email and as
# bytes everywhere else. Set for the process; tickets are its only PDFs.
rl_config.useA85 = 0


@dataclass(frozen=True, slots=True)
class TicketSeat:
    seat_id: str
    ticket_class: str
    row: int
    number: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class TicketDetails:
    """Everything printed on a ticket, gathered from the booking and its event."""

    booking_id: int
    event_id: int
    event_title: str
    event_date: datetime
    venue: str
    seats: Sequence[TicketSeat]
    total_amount: Decimal
    currency: str


def format_amount(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,.2f}"


def format_event_date(value: datetime) -> str:
    """``Saturday 12 December 2026, 19:30 UTC`` (times are stored and shown in UTC)."""
    zone = value.tzname() or "UTC"
    return f"{value:%A} {value.day} {value:%B %Y, %H:%M} {zone}"


def booking_reference(booking_id: int) -> str:
    return f"BK-{booking_id:08d}"


#: Modules of white around the code, as the QR standard asks: phones and gate scanners
#: find the code by its quiet zone.
QR_QUIET_ZONE = 4


#: zxing-cpp's image bytes (0 dark, 255 light) as modules (1 dark, 0 light)
_AS_MODULES = bytes(1 if value == 0 else 0 for value in range(256))


def qr_modules(data: str) -> tuple[bytes, ...]:
    """The QR code of ``data`` as rows of modules (1 dark, 0 light), top row first, without
    the quiet zone. Error correction M survives a crease or a smudge.

    Encoded by zxing-cpp (C++; the same library gates decode with): it picks the mask the
    standard's penalty rules prefer, as a pure-Python encoder does in about 8 ms a ticket
    (segno, measured here under load); zxing-cpp takes well under a millisecond.
    """
    code = zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    image = code.to_image(scale=1, add_quiet_zones=False)
    size = image.shape[1]
    pixels = memoryview(image).tobytes().translate(_AS_MODULES)  # type: ignore[arg-type]
    return tuple(pixels[row : row + size] for row in range(0, len(pixels), size))


# -- fonts ---------------------------------------------------------------------------------

# Where Debian keeps the two packages' fonts, then anywhere under the usual font folders
# (other distributions); TICKET_FONT_DIRS replaces the list.
DEFAULT_TICKET_FONT_DIRS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/truetype/abyssinica"),
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
)


@dataclass(frozen=True, slots=True)
class TicketFontFamily:
    """A TrueType family tickets may be set in: its files and the Debian package with them."""

    name: str
    regular: str
    bold: str | None  # None: bold text uses the regular face
    package: str


# In order of preference: a run of text is set in the first that has all its characters.
TICKET_FONT_FAMILIES: tuple[TicketFontFamily, ...] = (
    TicketFontFamily("DejaVuSans", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "fonts-dejavu-core"),
    TicketFontFamily("AbyssinicaSIL", "AbyssinicaSIL-Regular.ttf", None, "fonts-sil-abyssinica"),
)


@dataclass(frozen=True, slots=True)
class TicketFont:
    name: str  # as registered with reportlab
    glyphs: Container[int]  # the code points it has a glyph for


#: what Helvetica prints, as reportlab sets the standard fonts (WinAnsiEncoding, cp1252)
WIN_ANSI: frozenset[int] = frozenset(
    ord(char) for char in bytes(range(32, 256)).decode("cp1252", errors="ignore")
)
HELVETICA = TicketFont("Helvetica", WIN_ANSI)
HELVETICA_BOLD = TicketFont("Helvetica-Bold", WIN_ANSI)


@dataclass(frozen=True, slots=True)
class TicketFonts:
    """The fonts in order of preference, regular and bold: Helvetica (never embedded), then
    the TrueType fonts found, for text Helvetica cannot print."""

    regular: tuple[TicketFont, ...] = (HELVETICA,)
    bold: tuple[TicketFont, ...] = (HELVETICA_BOLD,)

    @property
    def embedded(self) -> tuple[TicketFont, ...]:
        """The TrueType fonts found (none: only Latin-1 text prints)."""
        return tuple(font for font in self.regular if font is not HELVETICA)

    def _fonts(self, bold: bool) -> tuple[TicketFont, ...]:
        return self.bold if bold else self.regular

    def default(self, *, bold: bool = False) -> str:
        return self._fonts(bold)[0].name

    def _best(self, text: str, bold: bool) -> TicketFont | None:
        """The first font with a glyph for every character of ``text``, else the one with
        glyphs for the most of them (white space is in every font and does not count)."""
        fonts = self._fonts(bold)
        codes = [ord(char) for char in text if not char.isspace()]
        best, best_count = None, -1
        for font in fonts:
            count = sum(code in font.glyphs for code in codes)
            if count == len(codes):
                return font
            if count > best_count:
                best, best_count = font, count
        return best

    def font_for(self, text: str, *, bold: bool = False) -> str:
        """The font to set ``text`` in as one run (a table cell)."""
        best = self._best(text, bold)
        return best.name if best else self.default(bold=bold)

    def runs(self, text: str, *, bold: bool = False) -> list[tuple[str, str]]:
        """``text`` cut into ``(font, part)`` runs: all in :meth:`font_for`'s font when one
        font has every character; otherwise in the font with the most of them, and each
        character it lacks in the first font that has it (a title mixing Ethiopic and
        Cyrillic prints both). A character no font has stays in the main run."""
        best = self._best(text, bold)
        if best is None:
            return [(self.default(bold=bold), text)] if text else []
        fonts = self._fonts(bold)
        runs: list[tuple[str, str]] = []
        for char in text:
            code = ord(char)
            if char.isspace():
                name = runs[-1][0] if runs else best.name  # spaces join the run they are in
            elif code in best.glyphs:
                name = best.name
            else:
                name = next((f.name for f in fonts if code in f.glyphs), best.name)
            if runs and runs[-1][0] == name:
                runs[-1] = (name, runs[-1][1] + char)
            else:
                runs.append((name, char))
        return runs

    def markup(self, text: str, *, bold: bool = False) -> str:
        """``text`` as Paragraph markup (escaped), each run in its font."""
        return "".join(
            f'<font face="{name}">{escape(part)}</font>'
            for name, part in self.runs(text, bold=bold)
        )


_fonts_lock = threading.Lock()
_fonts_by_dirs: dict[tuple[Path, ...], TicketFonts] = {}
_loaded: dict[Path, TicketFont] = {}  # every font file is read and registered once


def ticket_fonts(dirs: Iterable[Path | str] = DEFAULT_TICKET_FONT_DIRS) -> TicketFonts:
    """The ticket fonts found under ``dirs``, registered with reportlab on first use."""
    key = tuple(Path(d) for d in dirs)
    with _fonts_lock:
        fonts = _fonts_by_dirs.get(key)
        if fonts is None:
            fonts = _fonts_by_dirs[key] = _load_fonts(key)
        return fonts


def _find_font_file(filename: str, dirs: Sequence[Path]) -> Path | None:
    """``filename`` directly in one of ``dirs`` (in order), else anywhere below one."""
    for folder in dirs:
        if (folder / filename).is_file():
            return (folder / filename).resolve()
    for folder in dirs:
        try:
            found = sorted(path for path in folder.rglob(filename) if path.is_file())
        except OSError:
            continue
        if found:
            return found[0].resolve()
    return None


def _register(path: Path, name: str) -> TicketFont | None:
    font = _loaded.get(path)
    if font is not None:
        return font
    taken = {loaded.name for loaded in _loaded.values()}
    if name in taken:  # the same family from another folder (another TICKET_FONT_DIRS)
        name = f"{name}~{len(_loaded)}"
    try:
        ttf = TTFont(name, str(path))
    except Exception as exc:  # a broken or unreadable font file counts as missing
        logger.warning("cannot read ticket font %s: %s", path, exc)
        return None
    pdfmetrics.registerFont(ttf)
    font = _loaded[path] = TicketFont(name, ttf.face.charToGlyph)
    return font


def _load_fonts(dirs: tuple[Path, ...]) -> TicketFonts:
    regular: list[TicketFont] = []
    bold: list[TicketFont] = []
    missing: list[str] = []
    for family in TICKET_FONT_FAMILIES:
        path = _find_font_file(family.regular, dirs)
        font = _register(path, family.name) if path else None
        if font is None:
            missing.append(f"{family.regular} ({family.package})")
            continue
        bold_path = _find_font_file(family.bold, dirs) if family.bold else None
        bold_font = (_register(bold_path, f"{family.name}-Bold") if bold_path else None) or font
        pdfmetrics.registerFontFamily(
            font.name,
            normal=font.name,
            bold=bold_font.name,
            italic=font.name,
            boldItalic=bold_font.name,
        )
        regular.append(font)
        bold.append(bold_font)
    searched = ", ".join(str(d) for d in dirs)
    if not regular:
        logger.warning(
            "no ticket fonts found under %s: PDF tickets fall back to Helvetica and print "
            "only Latin-1 text; install %s or set TICKET_FONT_DIRS",
            searched,
            " and ".join(f.package for f in TICKET_FONT_FAMILIES),
        )
    elif missing:
        logger.warning(
            "ticket fonts not found under %s: %s; text only they cover will not print",
            searched,
            ", ".join(missing),
        )
    return TicketFonts((HELVETICA, *regular), (HELVETICA_BOLD, *bold))


# -- the PDF -------------------------------------------------------------------------------


#: seats' QR codes side by side, each this wide (quiet zone included): three fill the A4
#: text width, and a module stays near a millimetre, as gate scanners read best
SEAT_CODES_PER_ROW = 3
SEAT_CODE_SIZE = 44 * mm
SEAT_CODE_COLUMN = 58 * mm
#: the seat's label under its code: its id, then its row and number
_LABEL_HEIGHT = 10 * mm


@dataclass(frozen=True, slots=True)
class SeatCode:
    """One seat's QR code as modules, with the seat it admits to."""

    seat: TicketSeat
    modules: tuple[bytes, ...]


class SeatCodeRow(Flowable):  # type: ignore[misc]  # reportlab has no type hints
    """Up to :data:`SEAT_CODES_PER_ROW` seats' QR codes, each over its seat's label.

    Drawn straight into the page: each code is one filled path (:func:`qr_path`) and each
    label two lines of a standard font, with no table or paragraph to lay out, so a seat
    costs its QR encoding and little else. A row never splits; the next page takes it.

    Squares stay sharp at any zoom and on any printer, and cost less than an image: the
    smallest PNG (one pixel a module) measured 0.7 ms more per ticket here (written by
    an encoder, read back by Pillow, recompressed and ASCII85-encoded by reportlab in pure
    Python), and viewers that smooth scaled images blur it.
    """

    def __init__(self, codes: Sequence[SeatCode], fonts: TicketFonts) -> None:
        super().__init__()
        self._codes = codes
        self._fonts = fonts
        self.width = SEAT_CODE_COLUMN * SEAT_CODES_PER_ROW
        self.height = SEAT_CODE_SIZE + _LABEL_HEIGHT

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        canvas = self.canv
        for column, code in enumerate(self._codes):
            left = column * SEAT_CODE_COLUMN
            canvas.saveState()
            canvas.translate(left + (SEAT_CODE_COLUMN - SEAT_CODE_SIZE) / 2, _LABEL_HEIGHT)
            canvas.addLiteral(qr_path(code.modules, SEAT_CODE_SIZE))
            canvas.restoreState()
            middle = left + SEAT_CODE_COLUMN / 2
            canvas.setFont(self._fonts.default(bold=True), 10)
            canvas.drawCentredString(middle, _LABEL_HEIGHT - 4 * mm, code.seat.seat_id)
            canvas.setFont(self._fonts.default(), 8)
            label = f"Row {code.seat.row}, seat {code.seat.number}"
            canvas.drawCentredString(middle, _LABEL_HEIGHT - 8 * mm, label)


def seat_code_rows(
    details: TicketDetails, signing_secret: str, fonts: TicketFonts
) -> list[SeatCodeRow]:
    """Each seat's QR code (its signed ticket code), in rows, in the booking's seat order."""
    codes = [
        SeatCode(
            seat,
            qr_modules(
                sign_ticket_code(details.booking_id, details.event_id, seat.seat_id, signing_secret)
            ),
        )
        for seat in details.seats
    ]
    return [
        SeatCodeRow(codes[start : start + SEAT_CODES_PER_ROW], fonts)
        for start in range(0, len(codes), SEAT_CODES_PER_ROW)
    ]


def qr_path(modules: Sequence[bytes | bytearray], size: float) -> str:
    """PDF operators filling the dark modules of ``modules`` in a ``size``-point square
    (quiet zone included), its origin at the current point's lower left.

    Each row's dark runs become one rectangle each, in module units under one scaling
    ``cm``, and one ``f`` fills them all: adjacent squares show no hairline seams.
    """
    count = len(modules)
    unit = size / (count + 2 * QR_QUIET_ZONE)
    ops = [f"q 0 g {unit:.4f} 0 0 {unit:.4f} 0 0 cm"]
    for index, row in enumerate(modules):
        y = count - 1 - index + QR_QUIET_ZONE
        for run in _DARK_RUN.finditer(row):
            ops.append(f"{run.start() + QR_QUIET_ZONE} {y} {run.end() - run.start()} 1 re")
    ops.append("f Q")
    return "\n".join(ops)


_DARK_RUN = re.compile(b"\x01+")


@dataclass(frozen=True, slots=True)
class _Layout:
    """What every ticket set in the same fonts shares, built once per process: the style
    sheet and the seat table's base style."""

    fonts: TicketFonts
    styles: dict[str, ParagraphStyle]
    seat_table_style: tuple[Any, ...]


#: by font folders, like the fonts; two first renders at once may build one twice, harmlessly
_layouts: dict[tuple[Path, ...], _Layout] = {}


def _layout(font_dirs: Iterable[Path | str]) -> _Layout:
    key = tuple(Path(d) for d in font_dirs)
    layout = _layouts.get(key)
    if layout is None:
        fonts = ticket_fonts(key)
        layout = _layouts.setdefault(key, _Layout(fonts, _styles(fonts), _seat_table_style(fonts)))
    return layout


def _styles(fonts: TicketFonts) -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    regular, bold = fonts.default(), fonts.default(bold=True)
    return {
        "kicker": ParagraphStyle(
            "kicker",
            parent=base["Normal"],
            fontName=regular,
            fontSize=9,
            textColor=colors.HexColor("#6b7280"),
        ),
        "title": ParagraphStyle(
            "title",
            parent=base["Title"],
            fontName=bold,
            alignment=0,
            fontSize=22,
            leading=26,
            spaceAfter=4,
        ),
        "field": ParagraphStyle(
            "field", parent=base["Normal"], fontName=regular, fontSize=11, leading=15
        ),
        "small": ParagraphStyle(
            "small",
            parent=base["Normal"],
            fontName=regular,
            fontSize=8,
            leading=10,
            textColor=colors.HexColor("#4b5563"),
        ),
    }


def _seat_table_style(fonts: TicketFonts) -> tuple[Any, ...]:
    return (
        ("FONTNAME", (0, 0), (-1, -1), fonts.default()),
        ("FONTNAME", (0, 0), (-1, 0), fonts.default(bold=True)),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#111827")),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f3f4f6")]),
        ("FONTNAME", (0, -1), (-1, -1), fonts.default(bold=True)),
        ("LINEABOVE", (0, -1), (-1, -1), 1, colors.HexColor("#111827")),
        ("ALIGN", (4, 0), (4, -1), "RIGHT"),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
        ("TOPPADDING", (0, 0), (-1, -1), 5),
    )


def _seat_table(details: TicketDetails, layout: _Layout) -> Table:
    fonts = layout.fonts
    rows: list[list[str]] = [["Seat", "Class", "Row", "Number", "Price"]]
    rows += [
        [
            s.seat_id,
            s.ticket_class.upper(),
            str(s.row),
            str(s.number),
            format_amount(s.price, details.currency),
        ]
        for s in details.seats
    ]
    rows.append(["", "", "", "Total paid", format_amount(details.total_amount, details.currency)])
    table = Table(rows, colWidths=[45 * mm, 28 * mm, 18 * mm, 28 * mm, 45 * mm], repeatRows=1)
    commands: list[Any] = list(layout.seat_table_style)
    # A cell the main font cannot print (a seat or class named in another script).
    for number, row in enumerate(rows):
        bold = number in (0, len(rows) - 1)
        for column, text in enumerate(row):
            name = fonts.font_for(text, bold=bold)
            if name != fonts.default(bold=bold):
                commands.append(("FONTNAME", (column, number), (column, number), name))
    table.setStyle(TableStyle(commands))
    return table


def render_ticket_pdf(
    details: TicketDetails,
    signing_secret: str,
    font_dirs: Iterable[Path | str] = DEFAULT_TICKET_FONT_DIRS,
) -> bytes:
    """Render the ticket, one QR code per seat signed with ``signing_secret``
    (``TICKET_SIGNING_SECRET``); the same details always give the same bytes."""
    layout = _layout(font_dirs)
    fonts, styles = layout.fonts, layout.styles

    def field(label: str, value: str) -> Paragraph:
        return Paragraph(f"{fonts.markup(label, bold=True)} {fonts.markup(value)}", styles["field"])

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Ticket {booking_reference(details.booking_id)}",
        author="Ticketing",
        invariant=True,
        initialFontName=fonts.default(),  # no unused Helvetica in the file
    )
    story: list[Any] = [
        Paragraph(fonts.markup("EVENT TICKET"), styles["kicker"]),
        Paragraph(fonts.markup(details.event_title, bold=True), styles["title"]),
        field("Date:", format_event_date(details.event_date)),
        field("Venue:", details.venue),
        field("Booking reference:", booking_reference(details.booking_id)),
        field("Amount paid:", format_amount(details.total_amount, details.currency)),
        Spacer(1, 6 * mm),
        *seat_code_rows(details, signing_secret, fonts),
        Paragraph(
            fonts.markup(
                "Show each seat's QR code at the entrance: it admits one person to that seat, "
                "once, and only while this booking stays confirmed."
            ),
            styles["small"],
        ),
        Spacer(1, 8 * mm),
        _seat_table(details, layout),
    ]
    doc.build(story)
    return buffer.getvalue()
