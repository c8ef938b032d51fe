"""Reading a ticket PDF back: its text and the QR code printed on it."""

from __future__ import annotations

import io
from typing import cast

import zxingcpp
from pypdf import PdfReader
from pypdf.generic import DictionaryObject


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def qr_codes(pdf: bytes) -> list[str]:
    """Decode every QR code among the PDF's images."""
    found: list[str] = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for image in page.images:
            found += [
                barcode.text
                for barcode in zxingcpp.read_barcodes(image.image)
                if barcode.format == zxingcpp.BarcodeFormat.QRCode
            ]
    return found


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
