"""Dependencies of auth_service's routes: the service object, paging, request bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from auth_service.documents import Document, check_document
from auth_service.errors import InvalidDocument
from auth_service.resources import resources_of
from auth_service.service import AuthService
from ticketing_common.db import SessionDep
from ticketing_common.errors import BadRequest, PayloadTooLarge

_MULTIPART_OVERHEAD = 64 * 1024

M = TypeVar("M", bound=BaseModel)


def client_ip(request: Request) -> str | None:
    """The caller's address as the gateway saw it (``X-Real-IP``), else the peer's."""
    forwarded = request.headers.get("x-real-ip")
    if forwarded:
        return forwarded[:64]
    return request.client.host if request.client else None


async def get_auth_service(request: Request, session: SessionDep) -> AuthService:
    resources = resources_of(request.app)
    return AuthService(
        session=session,
        settings=resources.settings,
        redis=resources.redis,
        passwords=resources.passwords,
        sessionmaker=resources.sessionmaker,
        ip=client_ip(request),
    )


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


@dataclass(frozen=True, slots=True)
class BodyWithDocument(Generic[M]):
    fields: M
    document: Document | None


def _validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


async def read_body_with_document(request: Request, model: type[M]) -> BodyWithDocument[M]:
    """A JSON body, urlencoded form fields, or multipart form fields plus an optional
    ``document`` file (the original took forms)."""
    settings = resources_of(request.app).settings
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        declared = request.headers.get("content-length", "")
        too_large = settings.document_max_bytes + _MULTIPART_OVERHEAD
        if declared.isdigit() and int(declared) > too_large:
            limit_mb = settings.document_max_bytes / (1024 * 1024)
            raise PayloadTooLarge(f"document is larger than {limit_mb:g} MB")
        async with request.form(max_files=1, max_fields=20) as form:
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            upload = form.get("document")
            document = None
            if isinstance(upload, UploadFile):
                document = check_document(
                    await upload.read(settings.document_max_bytes + 1), settings
                )
            elif upload is not None:
                raise InvalidDocument("document must be sent as a file")
        return BodyWithDocument(_validated(model, fields), document)
    if content_type.startswith("application/x-www-form-urlencoded"):
        async with request.form(max_files=0, max_fields=20) as form:
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        return BodyWithDocument(_validated(model, fields), None)
    if content_type.startswith("application/json") or not content_type:
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise BadRequest("request body is not valid JSON") from exc
        return BodyWithDocument(_validated(model, data), None)
    raise BadRequest(
        "send the body as application/json, application/x-www-form-urlencoded "
        "or multipart/form-data"
    )


def body_openapi(model: type[BaseModel], *, document_required: bool = False) -> dict[str, Any]:
    """OpenAPI for a route that takes ``model`` as JSON or as multipart with a document."""
    schema = model.model_json_schema()
    multipart = {
        **schema,
        "properties": {
            **schema.get("properties", {}),
            "document": {
                "type": "string",
                "format": "binary",
                "description": "PDF, PNG or JPEG"
                + (" (required for organizers)" if document_required else ""),
            },
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema},
                "multipart/form-data": {"schema": multipart},
            },
        }
    }
