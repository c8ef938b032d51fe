"""Reading a ticket PDF back: its text, its fonts and the QR code printed on it."""

from __future__ import annotations

import io
from typing import cast

import zxingcpp
from PIL import Image, ImageDraw
from pypdf import PageObject, PdfReader
from pypdf.generic import DictionaryObject

#: pixels per point when a page's drawing is rasterized (a QR module of ~2.8 pt gets 11)
_SCALE = 4

Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def qr_codes(pdf: bytes) -> list[str]:
    """Decode every QR code the PDF shows, drawn as black squares or embedded as an image."""
    found: list[str] = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        pictures = [image.image for image in page.images] + [_black_fills(page)]
        for picture in pictures:
            found += [
                barcode.text
                for barcode in zxingcpp.read_barcodes(picture)
                if barcode.format == zxingcpp.BarcodeFormat.QRCode
            ]
    return found


def _multiply(m: Matrix, n: Matrix) -> Matrix:
    """``m`` then ``n`` (PDF's row-vector convention: ``cm`` prepends to the current one)."""
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return (
        a * p + b * r,
        a * q + b * s,
        c * p + d * r,
        c * q + d * s,
        e * p + f * r + t,
        e * q + f * s + u,
    )


def _black_fills(page: PageObject) -> Image.Image:
    """The page's rectangles filled in black (``re`` ... ``f``), rasterized; the rest of the
    drawing (text, strokes, coloured fills) is left out. Enough for a QR code drawn as
    squares under scaling and translation."""
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    raster = Image.new("L", (round(width * _SCALE), round(height * _SCALE)), 255)
    draw = ImageDraw.Draw(raster)
    contents = page.get_contents()
    if contents is None:
        return raster
    ctm, black, saved = _IDENTITY, True, list[tuple[Matrix, bool]]()
    path: list[tuple[float, float, float, float]] = []
    for operands, operator in contents.operations:
        values = [float(v) for v in operands if isinstance(v, int | float)]
        match operator:
            case b"q":
                saved.append((ctm, black))
            case b"Q":
                ctm, black = saved.pop()
            case b"cm":
                ctm = _multiply(cast(Matrix, tuple(values)), ctm)
            case b"g":
                black = values == [0.0]
            case b"rg":
                black = values == [0.0, 0.0, 0.0]
            case b"re":
                x, y, w, h = values
                a, _, _, d, e, f = ctm
                path.append((a * x + e, d * y + f, a * (x + w) + e, d * (y + h) + f))
            case b"f" | b"F" | b"f*":
                for x0, y0, x1, y1 in path if black else []:
                    left, right = sorted((x0 * _SCALE, x1 * _SCALE))
                    top, bottom = sorted(((height - y0) * _SCALE, (height - y1) * _SCALE))
                    draw.rectangle([(left, top), (right, bottom)], fill=0)
                path = []
            case b"n" | b"S" | b"s" | b"B" | b"B*" | b"b" | b"b*":
                path = []
    return raster


def pdf_fonts(pdf: bytes) -> set[str]:
    """The BaseFont names of every font the pages use, without a subset's ``ABCDEF+`` tag."""
    names: set[str] = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources = cast(DictionaryObject, page["/Resources"].get_object())
        fonts = cast(DictionaryObject, resources.get("/Font", DictionaryObject()).get_object())
        for font in fonts.values():
            name = str(cast(DictionaryObject, font.get_object())["/BaseFont"]).lstrip("/")
            names.add(name.split("+", 1)[-1])
    return names


def embedded_fonts(pdf: bytes) -> set[str]:
    """The fonts whose glyphs the file carries (TrueType subsets); the standard fonts
    every reader has (Helvetica) are named but not embedded."""
    embedded: set[str] = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources = cast(DictionaryObject, page["/Resources"].get_object())
        fonts = cast(DictionaryObject, resources.get("/Font", DictionaryObject()).get_object())
        for font in fonts.values():
            entry = cast(DictionaryObject, font.get_object())
            descendants = entry.get("/DescendantFonts")
            candidates = [entry]
            if descendants is not None:
                candidates += [d.get_object() for d in descendants.get_object()]
            for candidate in candidates:
                descriptor = candidate.get("/FontDescriptor")
                if descriptor is not None and any(
                    key in descriptor.get_object()
                    for key in ("/FontFile", "/FontFile2", "/FontFile3")
                ):
                    embedded.add(str(entry["/BaseFont"]).lstrip("/").split("+", 1)[-1])
    return embedded
