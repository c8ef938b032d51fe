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

The page is drawn straight onto a reportlab canvas, not laid out by platypus: parsing each
paragraph's markup, breaking its lines, laying out the seat table and flowing it all through
frames was most of a ticket's CPU, for a layout that never changes (measured here: a 1-seat
ticket took 6.5 ms and takes 2.5, a 3-seat one 9 ms and 4.5). What platypus did for this
page is done here: text wrapped to the width in its fonts (:func:`wrap_runs`), a row of QR
codes or of the seat table that does not fit carried onto the next page, the table under
its heading row again. Most of what a ticket costs now is its QR codes: encoding each
(zxing-cpp's choice of mask, about 0.4 ms) and compressing its squares into the page.
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
from itertools import groupby
from operator import itemgetter
from pathlib import Path

import zxingcpp
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

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

    def _best(self, text: str, bold: bool) -> tuple[TicketFont | None, bool]:
        """The first font with a glyph for every character of ``text``, and True; else the
        one with glyphs for the most of them, and False (white space is in every font and
        does not count)."""
        fonts = self._fonts(bold)
        codes = [ord(char) for char in text if not char.isspace()]
        best, best_count = None, -1
        for font in fonts:
            count = sum(code in font.glyphs for code in codes)
            if count == len(codes):
                return font, True
            if count > best_count:
                best, best_count = font, count
        return best, False

    def runs(self, text: str, *, bold: bool = False) -> list[tuple[str, str]]:
        """``text`` cut into ``(font, part)`` runs: all in the first font that has every
        character when one has; otherwise in the font with the most of them, and each
        character it lacks in the first font that has it (a title mixing Ethiopic and
        Cyrillic prints both). A character no font has stays in the main run."""
        best, complete = self._best(text, bold)
        if best is None or complete:  # one run, as nearly every text on a ticket is
            name = best.name if best else self.default(bold=bold)
            return [(name, text)] if text else []
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

#: one (font, text) part after another: a piece of text as :meth:`TicketFonts.runs` cuts it
Runs = Sequence[tuple[str, str]]

PAGE_WIDTH: float = A4[0]
PAGE_HEIGHT: float = A4[1]
#: white around the text on every side
MARGIN: float = 20 * mm
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN

#: seats' QR codes side by side, each this wide (quiet zone included): three span the A4
#: page but 18 mm either side, and a module stays near a millimetre, as gate scanners read best
SEAT_CODES_PER_ROW = 3
SEAT_CODE_SIZE = 44 * mm
SEAT_CODE_COLUMN = 58 * mm
#: the seat's label under its code: its id, then its row and number
_LABEL_HEIGHT = 10 * mm
_SEAT_CODE_ROW_HEIGHT = SEAT_CODE_SIZE + _LABEL_HEIGHT
#: a row of codes is a little wider than the text, and centred on the page
_SEAT_CODES_LEFT = (PAGE_WIDTH - SEAT_CODES_PER_ROW * SEAT_CODE_COLUMN) / 2

#: the seat table's columns, their widths, and its rows: 10-point text on 12-point lines,
#: 5 points above and below, 6 points in from a cell's sides; the price column, the last,
#: is aligned right
SEAT_TABLE_HEADINGS = ("Seat", "Class", "Row", "Number", "Price")
SEAT_TABLE_WIDTHS = (45 * mm, 28 * mm, 18 * mm, 28 * mm, 45 * mm)
_TABLE_WIDTH = sum(SEAT_TABLE_WIDTHS)
_TABLE_LEFT = (PAGE_WIDTH - _TABLE_WIDTH) / 2
_TABLE_FONT_SIZE = 10
_TABLE_ROW_HEIGHT = 22
_TABLE_CELL_PADDING = 6
_TABLE_BASELINE = 7  # above the row's bottom

_INK = colors.black
_DARK = colors.HexColor("#111827")  # the table's heading row and the rule over its total
_STRIPE = colors.HexColor("#f3f4f6")  # every other seat's row


@dataclass(frozen=True, slots=True)
class TextStyle:
    """How a kind of text is set: its size, the distance from one line's baseline to the
    next (the first's is ``size`` below the top of the text), and its colour."""

    size: float
    leading: float
    colour: colors.Color = _INK


KICKER = TextStyle(9, 12, colors.HexColor("#6b7280"))
TITLE = TextStyle(22, 26)
FIELD = TextStyle(11, 15)
NOTE = TextStyle(8, 10, colors.HexColor("#4b5563"))
_AFTER_TITLE = 4
_BEFORE_CODES = 6 * mm
_BEFORE_TABLE = 8 * mm

NOTE_TEXT = (
    "Show each seat's QR code at the entrance: it admits one person to that seat, once, "
    "and only while this booking stays confirmed."
)


def runs_width(runs: Runs, size: float) -> float:
    """How wide ``runs`` print at ``size`` points (each part in its font)."""
    return float(sum(pdfmetrics.stringWidth(part, name, size) for name, part in runs))


_WORD = re.compile(r"\S+")


def wrap_runs(runs: Runs, size: float, width: float) -> list[Runs]:
    """``runs`` as lines no wider than ``width`` at ``size`` points, each as runs of its own:
    broken at white space, and a word wider than a line across lines, as platypus'
    paragraphs do.

    :func:`reportlab.lib.utils.simpleSplit` breaks text in one font; a line here may change
    fonts (a bold label, then its value; a word in another script), so it is measured part
    by part, each in its own font.
    """
    if runs_width(runs, size) <= width:
        return [runs]
    text = "".join(part for _, part in runs)
    font_of = [name for name, part in runs for _ in part]

    def cut(start: int, end: int) -> Runs:
        chars = zip(font_of[start:end], text[start:end], strict=True)
        return [
            (name, "".join(c for _, c in group)) for name, group in groupby(chars, itemgetter(0))
        ]

    def fits(start: int, end: int) -> bool:
        return runs_width(cut(start, end), size) <= width

    lines: list[Runs] = []
    start = end = -1  # the line so far is text[start:end]
    for word in _WORD.finditer(text):
        if start < 0:
            start = word.start()
        elif not fits(start, word.end()) and fits(*word.span()):
            lines.append(cut(start, end))  # the word starts the next line
            start = word.start()
        end = word.end()
        while not fits(start, end):  # a word wider than a line: as much as fits on this one
            split = max(word.start(), start + 1)
            while split + 1 < end and fits(start, split + 1):
                split += 1
            lines.append(cut(start, split))
            start = split
    if start >= 0:
        lines.append(cut(start, end))
    return lines


def one_line(text: str) -> str:
    """``text`` with each stretch of white space (line breaks too) as one space, as a
    paragraph prints it."""
    return " ".join(text.split())


class TextLines:
    """One PDF text object (``BT`` ... ``ET``) for many lines, each placed where it starts.

    ``drawString`` makes a text object per call, which costs twice as much per line; a font
    or colour is set here only when it changes. A text object cannot hold the rectangles
    under its text, so those are drawn before it.
    """

    def __init__(self, canvas: Canvas, colour: colors.Color) -> None:
        self._canvas = canvas
        self._text = canvas.beginText()
        self._text.setFillColor(colour)
        self._font: tuple[str, float] | None = None

    def colour(self, colour: colors.Color) -> None:
        self._text.setFillColor(colour)

    def line(self, x: float, y: float, runs: Runs, size: float) -> None:
        """``runs`` at ``size`` points, the baseline starting at (``x``, ``y``).

        Each line ends with ``T*``, as ``drawString``'s do: text extractors (and the tests)
        read each label and table cell as a line of its own, not a table row as one line.
        """
        text = self._text
        text.setTextOrigin(x, y)
        last = len(runs) - 1
        for index, (name, part) in enumerate(runs):
            if self._font != (name, size):
                text.setFont(name, size)
                self._font = (name, size)
            if index < last:
                text.textOut(part)
            else:
                text.textLine(part)

    def draw(self) -> None:
        self._canvas.drawText(self._text)


class TicketPages:
    """The ticket's canvas, and how far down the page it has been drawn: ``y`` is the top of
    what comes next. Whatever does not fit above the bottom margin goes on a new page."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.y = PAGE_HEIGHT - MARGIN

    def fits(self, height: float) -> bool:
        return self.y - height >= MARGIN

    def new_page(self) -> None:
        self.canvas.showPage()
        self.y = PAGE_HEIGHT - MARGIN

    def room(self, height: float) -> None:
        """Make room for ``height`` points: on a new page unless they fit on this one."""
        if not self.fits(height):
            self.new_page()

    def space(self, height: float) -> None:
        self.y -= height

    def paragraph(self, runs: Runs, style: TextStyle) -> None:
        """``runs`` wrapped to the text width, line under line, left-aligned."""
        text = TextLines(self.canvas, style.colour)
        for line in wrap_runs(runs, style.size, TEXT_WIDTH):
            if not self.fits(style.leading):
                text.draw()
                self.new_page()
                text = TextLines(self.canvas, style.colour)
            text.line(MARGIN, self.y - style.size, line, style.size)
            self.y -= style.leading
        text.draw()


@dataclass(frozen=True, slots=True)
class SeatCode:
    """One seat's QR code as modules, with the seat it admits to."""

    seat: TicketSeat
    modules: tuple[bytes, ...]


def seat_codes(details: TicketDetails, signing_secret: str) -> list[SeatCode]:
    """Each seat's QR code (its signed ticket code), in the booking's seat order."""
    return [
        SeatCode(
            seat,
            qr_modules(
                sign_ticket_code(details.booking_id, details.event_id, seat.seat_id, signing_secret)
            ),
        )
        for seat in details.seats
    ]


def draw_seat_codes(pages: TicketPages, codes: Sequence[SeatCode], fonts: TicketFonts) -> None:
    """The codes in rows of up to :data:`SEAT_CODES_PER_ROW`, each over its seat's label.

    Each code is one filled path (:func:`qr_path`) and each label two lines of a standard
    font. A row never splits; the next page takes it.

    Squares stay sharp at any zoom and on any printer, and cost less than an image: the
    smallest PNG (one pixel a module) measured 0.7 ms more per ticket here (written by
    an encoder, read back by Pillow, recompressed and ASCII85-encoded by reportlab in pure
    Python), and viewers that smooth scaled images blur it.
    """
    canvas = pages.canvas
    regular, bold = fonts.default(), fonts.default(bold=True)
    inset = (SEAT_CODE_COLUMN - SEAT_CODE_SIZE) / 2  # the code in the middle of its column
    for start in range(0, len(codes), SEAT_CODES_PER_ROW):
        row = codes[start : start + SEAT_CODES_PER_ROW]
        pages.room(_SEAT_CODE_ROW_HEIGHT)
        bottom = pages.y - _SEAT_CODE_ROW_HEIGHT
        for column, code in enumerate(row):
            left = _SEAT_CODES_LEFT + column * SEAT_CODE_COLUMN + inset
            canvas.addLiteral(qr_path(code.modules, SEAT_CODE_SIZE, left, bottom + _LABEL_HEIGHT))
        labels = TextLines(canvas, _INK)
        for column, code in enumerate(row):
            middle = _SEAT_CODES_LEFT + (column + 0.5) * SEAT_CODE_COLUMN
            seat_id = [(bold, code.seat.seat_id)]
            place = [(regular, f"Row {code.seat.row}, seat {code.seat.number}")]
            labels.line(middle - runs_width(seat_id, 10) / 2, bottom + 6 * mm, seat_id, 10)
            labels.line(middle - runs_width(place, 8) / 2, bottom + 2 * mm, place, 8)
        labels.draw()
        pages.y = bottom


def qr_path(modules: Sequence[bytes], size: float, x: float = 0, y: float = 0) -> str:
    """PDF operators filling the dark modules of ``modules`` in a ``size``-point square
    (quiet zone included) whose lower left corner is at (``x``, ``y``).

    Each row's dark runs become rectangles, in module units under one scaling ``cm``, and
    one ``f`` fills them all: adjacent rectangles show no hairline seams, so a run may be
    cut in two where the row's pieces (:class:`_RowPieces`) meet.
    """
    count = len(modules)
    unit = size / (count + 2 * QR_QUIET_ZONE)
    columns = range(0, count, _ROW_PIECE)
    ops = [f"q 0 g {unit:.4f} 0 0 {unit:.4f} {x:.4f} {y:.4f} cm\n"]
    for index, row in enumerate(modules):
        pieces = "".join(
            [_ROW_PIECES[column, row[column : column + _ROW_PIECE]] for column in columns]
        )
        ops.append(pieces.format(count - 1 - index + QR_QUIET_ZONE))
    ops.append("f Q")
    return "".join(ops)


_DARK_RUN = re.compile(b"\x01+")
#: modules in a row's piece: 256 patterns at each of a code's up to 23 columns of pieces
_ROW_PIECE = 8


class _RowPieces(dict[tuple[int, bytes], str]):
    """The rectangles of a piece of a row, by its first module's column and its modules:
    ``x {0} width 1 re`` for each dark run, the row's ``y`` left to :meth:`str.format`.

    A code's rows differ from one ticket to the next, but their pieces repeat: looked up
    here, a code's path takes about 0.1 ms, a third to a half of finding and formatting each
    run of each row, for a few hundred pieces more (about 10 % more rectangles, and bytes).
    Built as they are first needed (two threads may build one twice, harmlessly).
    """

    def __missing__(self, key: tuple[int, bytes]) -> str:
        column, modules = key
        left = column + QR_QUIET_ZONE
        ops = "".join(
            f"{left + run.start()} {{0}} {run.end() - run.start()} 1 re\n"
            for run in _DARK_RUN.finditer(modules)
        )
        self[key] = ops
        return ops


_ROW_PIECES = _RowPieces()


def _table_cells(text: TextLines, bottom: float, cells: Sequence[Runs]) -> None:
    """A table row's text, its bottom at ``bottom``; the last column aligned right."""
    left = _TABLE_LEFT
    last = len(SEAT_TABLE_WIDTHS) - 1
    for column, (runs, width) in enumerate(zip(cells, SEAT_TABLE_WIDTHS, strict=True)):
        if runs:
            x = left + _TABLE_CELL_PADDING
            if column == last:
                x = left + width - _TABLE_CELL_PADDING - runs_width(runs, _TABLE_FONT_SIZE)
            text.line(x, bottom + _TABLE_BASELINE, runs, _TABLE_FONT_SIZE)
        left += width


def draw_seat_table(pages: TicketPages, details: TicketDetails, layout: _Layout) -> None:
    """Every seat with its class, row, number and price, on alternate stripes, then the
    total paid under a rule. Rows that do not fit go on the next page, under the heading
    row again."""
    fonts = layout.fonts
    rows: list[Sequence[Runs]] = [
        [
            fonts.runs(seat.seat_id),
            fonts.runs(seat.ticket_class.upper()),
            fonts.runs(str(seat.row)),
            fonts.runs(str(seat.number)),
            fonts.runs(format_amount(seat.price, details.currency)),
        ]
        for seat in details.seats
    ]
    total = format_amount(details.total_amount, details.currency)
    rows.append([(), (), (), layout.total_label, fonts.runs(total, bold=True)])
    first = 0
    while first < len(rows):
        if first:
            pages.new_page()
        pages.room(2 * _TABLE_ROW_HEIGHT)  # the heading row is never alone at a page's foot
        first = _draw_table_page(pages, layout, rows, first)


def _draw_table_page(
    pages: TicketPages, layout: _Layout, rows: Sequence[Sequence[Runs]], first: int
) -> int:
    """The heading row, then as many of ``rows`` from ``first`` on as fit on the page (the
    last of ``rows`` is the total); the index of the first that did not fit.

    The rows' backgrounds first, then all their text in one text object.
    """
    canvas, top = pages.canvas, pages.y
    shown = rows[first : first + int((top - MARGIN) // _TABLE_ROW_HEIGHT) - 1]
    total_shown = first + len(shown) == len(rows)

    def bottom(row: int) -> float:  # 0 is the heading row, then the rows shown
        return top - (row + 1) * _TABLE_ROW_HEIGHT

    canvas.setFillColor(_DARK)
    canvas.rect(_TABLE_LEFT, bottom(0), _TABLE_WIDTH, _TABLE_ROW_HEIGHT, stroke=0, fill=1)
    canvas.setFillColor(_STRIPE)
    for row in range(1, len(shown) + 1):
        seat = first + row - 1
        if seat % 2 and not (total_shown and row == len(shown)):
            canvas.rect(_TABLE_LEFT, bottom(row), _TABLE_WIDTH, _TABLE_ROW_HEIGHT, stroke=0, fill=1)
    if total_shown:
        rule = bottom(len(shown) - 1)
        canvas.setStrokeColor(_DARK)
        canvas.setLineWidth(1)
        canvas.line(_TABLE_LEFT, rule, _TABLE_LEFT + _TABLE_WIDTH, rule)
    text = TextLines(canvas, colors.white)
    _table_cells(text, bottom(0), layout.table_headings)
    text.colour(_INK)
    for row, cells in enumerate(shown, start=1):
        _table_cells(text, bottom(row), cells)
    text.draw()
    pages.y = bottom(len(shown))
    return first + len(shown)


@dataclass(frozen=True, slots=True)
class _Layout:
    """What every ticket set in the same fonts shares, worked out once per process: the
    fixed texts, cut into runs of the fonts that print them."""

    fonts: TicketFonts
    kicker: Runs
    field_labels: dict[str, Runs]  # each with the space after it
    note: Runs
    table_headings: tuple[Runs, ...]
    total_label: Runs


_FIELD_LABELS = ("Date:", "Venue:", "Booking reference:", "Amount paid:")

#: by font folders, like the fonts; two first renders at once may build one twice, harmlessly
_layouts: dict[tuple[Path, ...], _Layout] = {}


def _layout(font_dirs: Iterable[Path | str]) -> _Layout:
    key = tuple(Path(d) for d in font_dirs)
    layout = _layouts.get(key)
    if layout is None:
        fonts = ticket_fonts(key)
        layout = _layouts.setdefault(
            key,
            _Layout(
                fonts,
                kicker=fonts.runs("EVENT TICKET"),
                field_labels={
                    label: [*fonts.runs(label, bold=True), (fonts.default(), " ")]
                    for label in _FIELD_LABELS
                },
                note=fonts.runs(NOTE_TEXT),
                table_headings=tuple(fonts.runs(h, bold=True) for h in SEAT_TABLE_HEADINGS),
                total_label=fonts.runs("Total paid", bold=True),
            ),
        )
    return layout


def render_ticket_pdf(
    details: TicketDetails,
    signing_secret: str,
    font_dirs: Iterable[Path | str] = DEFAULT_TICKET_FONT_DIRS,
) -> bytes:
    """Render the ticket, one QR code per seat signed with ``signing_secret``
    (``TICKET_SIGNING_SECRET``); the same details always give the same bytes."""
    layout = _layout(font_dirs)
    fonts = layout.fonts
    buffer = io.BytesIO()
    canvas = Canvas(
        buffer,
        pagesize=A4,
        invariant=True,
        initialFontName=fonts.default(),  # no unused font in the file
    )
    canvas.setTitle(f"Ticket {booking_reference(details.booking_id)}")
    canvas.setAuthor("Ticketing")
    pages = TicketPages(canvas)
    pages.paragraph(layout.kicker, KICKER)
    pages.paragraph(fonts.runs(one_line(details.event_title), bold=True), TITLE)
    pages.space(_AFTER_TITLE)
    fields = zip(
        _FIELD_LABELS,
        (
            format_event_date(details.event_date),
            one_line(details.venue),
            booking_reference(details.booking_id),
            format_amount(details.total_amount, details.currency),
        ),
        strict=True,
    )
    for label, value in fields:
        pages.paragraph([*layout.field_labels[label], *fonts.runs(value)], FIELD)
    pages.space(_BEFORE_CODES)
    draw_seat_codes(pages, seat_codes(details, signing_secret), fonts)
    pages.paragraph(layout.note, NOTE)
    pages.space(_BEFORE_TABLE)
    draw_seat_table(pages, details, layout)
    canvas.save()
    return buffer.getvalue()
