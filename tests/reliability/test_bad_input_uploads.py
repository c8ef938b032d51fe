"""Organizer documents with hostile file names: stored under a generated name, or refused.

``POST /api/auth/register`` (multipart, organizer) is the one upload. Whatever name the
client gives its file (path traversal either way round, an absolute path, unicode, a
right-to-left override, a NUL byte, 300 characters), the answer is a 201 or a JSON 4xx,
each accepted file lands in the stack's upload folder as ``<hex>.<ext>`` with the bytes
that were sent, and nothing is written anywhere else.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devstack.config import ROOT
from tests.conftest import TEST_STACK, unique_email
from tests.reliability.conftest import json_error
from tests.support_auth import PASSWORD, PDF_DOCUMENT, admin_token, bearer

pytestmark = pytest.mark.stack

UPLOAD_DIR = TEST_STACK.run_dir / "uploads"
GENERATED_NAME = re.compile(r"^[0-9a-f]{32}\.(pdf|png|jpg)$")

HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\..\\win.ini",
    "/abs/path.pdf",
    "../../../../../../../../tmp/escaped.pdf",
    "../uploads/../../../devstack/config.py",
    "..%2F..%2Fencoded.pdf",
    "résumé 📄 حفلة.pdf",
    "invoice\u202efdp.exe",
    "evil.pdf\u0000.png",
    ".htaccess",
    "CON.pdf",
    "x" * 300 + ".pdf",
    "",
]
#: files a traversal could reach or overwrite; none may change
WATCHED = [
    Path("/etc/passwd"),
    ROOT / "devstack" / "config.py",
    ROOT / "pyproject.toml",
]
ESCAPE_TARGETS = [
    Path("/abs/path.pdf"),
    Path("/tmp/escaped.pdf"),
    TEST_STACK.run_dir / "etc" / "passwd",
    UPLOAD_DIR / "etc" / "passwd",
    ROOT / "win.ini",
]


def _files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()} if folder.exists() else set()


def _stat(path: Path) -> tuple[float, int] | None:
    return (path.stat().st_mtime, path.stat().st_size) if path.exists() else None


def _document(marker: str) -> bytes:
    """A PDF (by its magic bytes) that says which upload it was."""
    return PDF_DOCUMENT + f"% upload {marker}\n".encode()


def _files_named_like_the_uploads(folder: Path) -> Iterator[Path]:
    basenames = {re.split(r"[\\/]", name)[-1] for name in HOSTILE_NAMES if name}
    for path in folder.rglob("*"):
        if path.name in basenames:
            yield path


async def test_hostile_file_names_are_stored_under_generated_names_and_nowhere_else(
    new_client: Callable[[], httpx.AsyncClient],
) -> None:
    before_uploads = _files_under(UPLOAD_DIR)
    before_watched = {path: _stat(path) for path in WATCHED}
    before_elsewhere = _files_under(TEST_STACK.run_dir) - before_uploads
    markers = {name: uuid.uuid4().hex for name in HOSTILE_NAMES}

    responses: dict[str, httpx.Response] = {}
    async with new_client() as client:
        for name in HOSTILE_NAMES:
            responses[name] = await client.post(
                "/api/auth/register",
                data={"email": unique_email("upload"), "password": PASSWORD, "role": "organizer"},
                files={"document": (name, _document(markers[name]), "application/pdf")},
            )

    accepted = {}
    for name, response in responses.items():
        if response.status_code == 201:
            accepted[name] = int(response.json()["user"]["id"])
        else:
            json_error(response, what=f"upload named {name!r}")
    assert accepted, "every hostile name was refused; the test proves nothing about storage"

    new_uploads = _files_under(UPLOAD_DIR) - before_uploads
    assert len(new_uploads) == len(accepted), sorted(map(str, new_uploads))
    for path in new_uploads:
        assert GENERATED_NAME.match(path.name), f"stored under a client-chosen name: {path}"
        assert path.resolve().is_relative_to(UPLOAD_DIR.resolve()), path
    stored = {path.read_bytes(): path for path in new_uploads}
    for name in accepted:
        assert _document(markers[name]) in stored, f"the upload named {name!r} was not kept"

    assert {path: _stat(path) for path in WATCHED} == before_watched
    for target in ESCAPE_TARGETS:
        assert not target.exists(), f"a traversal wrote {target}"
    new_elsewhere = _files_under(TEST_STACK.run_dir) - before_uploads - new_uploads
    assert not [p for p in new_elsewhere - before_elsewhere if p.suffix in {".pdf", ".ini", ".exe"}]
    assert not list(_files_named_like_the_uploads(TEST_STACK.run_dir))


async def test_the_admin_gets_each_hostile_upload_back_under_its_generated_name(
    new_client: Callable[[], httpx.AsyncClient],
) -> None:
    names = ["../../etc/passwd", "..\\..\\win.ini", "/abs/path.pdf", "résumé 📄.pdf"]
    markers = {name: uuid.uuid4().hex for name in names}
    async with new_client() as client:
        registered = {
            name: await client.post(
                "/api/auth/register",
                data={"email": unique_email("upload"), "password": PASSWORD, "role": "organizer"},
                files={"document": (name, _document(markers[name]), "application/pdf")},
            )
            for name in names
        }
    async with new_client() as client:
        admin = bearer(await admin_token(client))
        fetched = {
            name: await client.get(
                f"/api/auth/admin/organizers/{response.json()['user']['id']}/document",
                headers=admin,
            )
            for name, response in registered.items()
            if response.status_code == 201
        }

    for name, response in registered.items():
        if response.status_code != 201:
            json_error(response, what=f"upload named {name!r}")
    assert fetched, "every hostile name was refused"
    for name, response in fetched.items():
        assert response.status_code == 200, response.text
        assert response.content == _document(markers[name])
        assert response.headers["content-type"] == "application/pdf"
        disposition = response.headers.get("content-disposition", "")
        served_as = re.search(r'filename="?([^";]+)', disposition)
        assert served_as is not None, disposition
        assert not re.search(r"[\\/]|\.\.", served_as.group(1)), disposition
