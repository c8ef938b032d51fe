"""Organizer documents: checked by content, size-limited, stored under a generated name.

The client's file name and declared content type are ignored: the type comes from the
file's first bytes, and the file is written as ``<random hex>.<ext>`` so nothing the client
sends decides where it lands or how it is served back.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from auth_service.errors import InvalidDocument
from auth_service.settings import AuthSettings
from ticketing_common.errors import NotFound, PayloadTooLarge

DOCUMENTS_SUBDIR = "organizer_documents"

# (magic prefix, extension, content type)
_SIGNATURES = (
    (b"%PDF-", "pdf", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
)


@dataclass(frozen=True, slots=True)
class Document:
    content: bytes
    extension: str
    content_type: str


def check_document(content: bytes, settings: AuthSettings) -> Document:
    if not content:
        raise InvalidDocument("document is empty")
    if len(content) > settings.document_max_bytes:
        limit_mb = settings.document_max_bytes / (1024 * 1024)
        raise PayloadTooLarge(f"document is larger than {limit_mb:g} MB")
    for magic, extension, content_type in _SIGNATURES:
        if content.startswith(magic):
            return Document(content, extension, content_type)
    raise InvalidDocument("document must be a PDF, PNG or JPEG file (checked by content)")


def _documents_dir(settings: AuthSettings) -> Path:
    return Path(settings.upload_dir) / DOCUMENTS_SUBDIR


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "wb") as file:
        file.write(content)


async def store_document(document: Document, settings: AuthSettings) -> str:
    """Write the document; returns its generated name."""
    name = f"{uuid.uuid4().hex}.{document.extension}"
    await asyncio.to_thread(_write, _documents_dir(settings) / name, document.content)
    return name


async def discard_document(name: str, settings: AuthSettings) -> None:
    await asyncio.to_thread(remove_document, name, settings)


def remove_document(name: str, settings: AuthSettings) -> None:
    """Delete a stored document (a small local unlink; gone already is fine)."""
    (_documents_dir(settings) / name).unlink(missing_ok=True)


def document_path(name: str, settings: AuthSettings) -> Path:
    path = _documents_dir(settings) / name
    if not path.is_file():
        raise NotFound("document file is missing")
    return path
