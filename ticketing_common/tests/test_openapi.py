"""Every service's OpenAPI documents the error statuses it really answers, with their body."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from ticketing_common.app import create_service_app, document_errors, error_responses
from ticketing_common.security import AdminUser, CurrentUser, ServiceCaller
from ticketing_common.settings import ServiceSettings
from ticketing_common.testing import running_app

SETTINGS = ServiceSettings(service_name="openapi_probe", DB_NAME="postgres", APP_ENV="test")

router = APIRouter()
internal = APIRouter(prefix="/internal", dependencies=[ServiceCaller])


class Thing(BaseModel):
    name: str


@router.get("/api/things")
async def list_things(q: str | None = None) -> dict[str, str]:
    return {}


@router.get("/api/about")
async def about() -> dict[str, str]:
    return {}


@router.post("/api/things", status_code=201)
async def create_thing(thing: Thing, user: AdminUser) -> dict[str, str]:
    return {}


@router.put("/api/things/{thing_id}", responses=error_responses(403, 409))
async def update_thing(thing_id: int, thing: Thing, user: CurrentUser) -> dict[str, str]:
    return {}


@router.post("/api/orders", responses=error_responses(422))
async def order(thing: Thing) -> dict[str, str]:
    return {}


@internal.get("/things/{thing_id}")
async def internal_thing(thing_id: int) -> dict[str, str]:
    return {}


def _statuses(schema: dict[str, Any], method: str, path: str) -> set[int]:
    return {int(status) for status in schema["paths"][path][method]["responses"]}


def _schema() -> dict[str, Any]:
    app = create_service_app(settings=SETTINGS, routers=[router, internal])
    return app.openapi()


def test_each_route_documents_the_errors_its_shape_implies() -> None:
    schema = _schema()

    assert _statuses(schema, "get", "/api/about") == {200, 429, 503}
    assert _statuses(schema, "get", "/api/things") == {200, 400, 429, 503}
    assert _statuses(schema, "post", "/api/things") == {201, 400, 401, 403, 413, 429, 503}
    assert _statuses(schema, "get", "/internal/things/{thing_id}") == {200, 400, 401, 404, 503}


def test_a_route_adds_the_errors_of_its_domain() -> None:
    schema = _schema()

    assert _statuses(schema, "put", "/api/things/{thing_id}") == {
        200, 400, 401, 403, 404, 409, 413, 429, 503,
    }  # fmt: skip


def test_fastapis_422_is_gone_unless_a_route_really_answers_it() -> None:
    schema = _schema()

    assert 422 not in _statuses(schema, "post", "/api/things")
    assert 422 in _statuses(schema, "post", "/api/orders")
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_every_error_documents_the_error_body() -> None:
    schema = _schema()
    body = schema["components"]["schemas"]["ErrorBody"]

    assert body["required"] == ["error"]
    assert set(body["properties"]) == {"error", "code", "details"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    content = response["content"]["application/json"]["schema"]
                    assert content == {"$ref": "#/components/schemas/ErrorBody"}, (
                        method,
                        path,
                        status,
                    )
                    assert response["description"]


def test_a_route_that_answers_errors_as_html_keeps_its_own_content() -> None:
    pages = APIRouter()

    @pages.get(
        "/api/page/{ref}",
        responses={404: {"description": "no such page", "content": {"text/html": {}}}},
    )
    async def page(ref: str) -> str:
        return ""

    app = FastAPI()
    app.include_router(pages)
    document_errors(app)
    response = app.openapi()["paths"]["/api/page/{ref}"]["get"]["responses"]["404"]

    assert response == {"description": "no such page", "content": {"text/html": {}}}


async def test_the_app_serves_the_documented_schema() -> None:
    app = create_service_app(settings=SETTINGS, routers=[router, internal])
    async with running_app(app) as client:
        served = (await client.get("/openapi.json")).json()

    assert served == _schema()
