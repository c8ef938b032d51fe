"""Reading a ticket PDF back: its text and the QR code printed on it."""

from __future__ import annotations

import io

import zxingcpp
from pypdf import PdfReader


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
