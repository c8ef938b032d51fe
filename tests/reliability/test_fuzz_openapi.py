"""Fuzz every service's OpenAPI through its real app: no 5xx, no hang, JSON errors.

Schemathesis generates valid and invalid requests for every operation of the five
services (public and ``/internal`` routes alike) and sends them in-process to the real
ASGI apps, each on a fresh PostgreSQL database of its own, with Redis and RabbitMQ live
and the lifespans (consumers, relays, background loops) running. The apps reach each
other through an in-process router, as they would over the network, so a booking really
asks event_service for seats. Callers vary: anonymous, or a valid access token of a
user, an organizer or the admin, plus the service token on ``/internal`` routes, so most
requests get past authentication to the handlers.

Every response must be: not a 5xx, answered within ``CALL_TIMEOUT`` seconds, for a 4xx a
JSON body with an ``"error"`` message (the hosted checkout's HTML pages excepted), and
pass schemathesis' checks (``--checks all`` but ``NOT_CHECKED``): every status answered is
documented in the service's OpenAPI, with its content type and body schema, and a request
without its credentials is refused.

Each operation gets schemathesis' deterministic coverage cases (boundaries, missing and
wrongly typed fields) plus ``FUZZ_EXAMPLES`` derandomized Hypothesis examples (default
25; about a minute for all five services), so a run is reproducible. A longer hunt:

    FUZZ_EXAMPLES=500 .venv/bin/pytest tests/reliability/test_fuzz_openapi.py -q
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import os
import subprocess
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import requests.adapters
import schemathesis
import schemathesis.transport.requests as schemathesis_requests
import urllib3
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from hypothesis import HealthCheck, Phase, settings
from pydantic import Field
from redis import Redis
from schemathesis import Case, checks
from schemathesis.core import NotSet
from schemathesis.core.failures import FailureGroup

from auth_service.api import router as auth_router
from auth_service.app import create_app as create_auth_app
from auth_service.settings import AuthSettings
from booking_service.api import router as booking_router
from booking_service.app import create_app as create_booking_app
from booking_service.settings import BookingSettings
from event_service.api import router as event_router
from event_service.app import create_app as create_event_app
from event_service.settings import EventSettings
from notification_service.api import router as notification_router
from notification_service.app import create_app as create_notification_app
from notification_service.settings import NotificationSettings
from payment_service.api import router as payment_router
from payment_service.app import create_app as create_payment_app
from payment_service.settings import PaymentSettings
from tests.support_auth import PDF_DOCUMENT
from tests.support_events import event_payload
from ticketing_common.app import document_errors
from ticketing_common.security import SERVICE_TOKEN_HEADER, issue_token
from ticketing_common.settings import ServiceSettings
from ticketing_common.testing import InProcessNetwork, fresh_database, route_internal_calls

# The apps run on a thread of their own, where libraries draw from `random` (retry jitter)
# while Hypothesis draws a case; Hypothesis takes that for a strategy using `random`.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CALL_TIMEOUT = 5.0
REDIS_DB = 8
VHOST = "ticketing_pytest_fuzz"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Admin-Password-1"
PASSWORD = "Correct-Horse-1"
BROWSER_PAGES = ("/api/payments/checkout/",)

# -- the services, each on a database of these tests' own ------------------------------


class FuzzAuthSettings(AuthSettings):
    db_name: str = Field("auth_db_fuzz", alias="DB_NAME")


class FuzzEventSettings(EventSettings):
    db_name: str = Field("event_db_fuzz", alias="DB_NAME")


class FuzzBookingSettings(BookingSettings):
    db_name: str = Field("booking_db_fuzz", alias="DB_NAME")


class FuzzPaymentSettings(PaymentSettings):
    db_name: str = Field("payment_db_fuzz", alias="DB_NAME")


class FuzzNotificationSettings(NotificationSettings):
    db_name: str = Field("notification_db_fuzz", alias="DB_NAME")


HOSTS = {
    "auth_service": "auth.fuzz",
    "event_service": "event.fuzz",
    "booking_service": "booking.fuzz",
    "payment_service": "payment.fuzz",
    "notification_service": "notification.fuzz",
}
SETTINGS_CLASSES: dict[str, type[ServiceSettings]] = {
    "auth_service": FuzzAuthSettings,
    "event_service": FuzzEventSettings,
    "booking_service": FuzzBookingSettings,
    "payment_service": FuzzPaymentSettings,
    "notification_service": FuzzNotificationSettings,
}


ROUTERS: dict[str, APIRouter] = {
    "auth_service": auth_router,
    "event_service": event_router,
    "booking_service": booking_router,
    "payment_service": payment_router,
    "notification_service": notification_router,
}


def _openapi(router: APIRouter) -> dict[str, Any]:
    """The schema of a service's routes (what its app serves at ``/openapi.json``)."""
    app = FastAPI()
    app.include_router(router)
    document_errors(app)
    return app.openapi()


# Built at import, as parametrizing needs them; the apps themselves start in a fixture.
SCHEMAS = {service: schemathesis.openapi.from_dict(_openapi(r)) for service, r in ROUTERS.items()}
auth_schema = SCHEMAS["auth_service"]
event_schema = SCHEMAS["event_service"]
booking_schema = SCHEMAS["booking_service"]
payment_schema = SCHEMAS["payment_service"]
notification_schema = SCHEMAS["notification_service"]


def _wire(text: str | bytes) -> bytes:
    """A header as a server gets it: latin-1 where it fits, else the UTF-8 bytes."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class InProcessAdapter(requests.adapters.HTTPAdapter):
    """A ``requests`` adapter (what schemathesis sends with) onto the apps' event loop.

    The apps, their lifespans and their connection pools live on one loop in a thread of
    their own; each request is handed to that loop and waited for at most ``timeout``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, router: InProcessNetwork) -> None:
        super().__init__()
        self.loop = loop
        self.router = router

    async def _exchange(self, request: httpx.Request) -> tuple[int, list[tuple[str, str]], bytes]:
        response = await self.router.handle_async_request(request)
        # As sent (a gzipped body stays gzipped): ``requests`` decodes what the headers say.
        content = b"".join([chunk async for chunk in response.aiter_raw()])
        return response.status_code, list(response.headers.multi_items()), content

    def send(
        self, request: requests.PreparedRequest, *args: Any, timeout: Any = None, **kwargs: Any
    ) -> requests.Response:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        assert body is None or isinstance(body, bytes), "streamed bodies are not sent here"
        outgoing = httpx.Request(
            str(request.method),
            str(request.url),
            headers=[(_wire(name), _wire(value)) for name, value in request.headers.items()],
            content=body or b"",
        )
        limit = timeout[1] if isinstance(timeout, tuple) else timeout
        future = asyncio.run_coroutine_threadsafe(self._exchange(outgoing), self.loop)
        try:
            status, headers, content = future.result(limit)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise requests.exceptions.ReadTimeout(
                f"no answer within {limit}s", request=request
            ) from None
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(content),
            headers=urllib3.HTTPHeaderDict(headers),
            status=status,
            version=11,
            reason=_reason(status),
            preload_content=False,
        )
        return self.build_response(request, raw)


@dataclass(frozen=True)
class Caller:
    """Who sends a request: anonymous, or a role with a valid access token of its own."""

    name: str
    user_id: int | None = None
    role: str | None = None

    def headers(self, secret: str, path: str, service_token: str) -> dict[str, str]:
        if self.user_id is None or self.role is None:
            return {}
        token, _ = issue_token(
            secret=secret,
            user_id=self.user_id,
            role=self.role,
            token_type="access",
            ttl=timedelta(minutes=15),
        )
        headers = {"Authorization": f"Bearer {token}"}
        if path.startswith("/internal/"):
            headers[SERVICE_TOKEN_HEADER] = service_token
        return headers


# The seeded admin is user 1 in auth_db; the fixture registers user 2 and organizer 3.
ANONYMOUS = Caller("anonymous")
ADMIN = Caller("admin", 1, "admin")
USER = Caller("user", 2, "user")
ORGANIZER = Caller("organizer", 3, "organizer")
CALLERS = (ANONYMOUS, USER, ORGANIZER, ADMIN, USER, ORGANIZER)


def caller_for(case: Case[Any]) -> Caller:
    """Who sends ``case``: varied, but the same for the same request, so a failure replays."""
    body = None if isinstance(case.body, NotSet) else case.body
    fingerprint = repr((case.operation.label, case.path_parameters, case.query, body))
    return CALLERS[zlib.crc32(fingerprint.encode(errors="surrogatepass")) % len(CALLERS)]


@dataclass
class FuzzStack:
    """The five apps on one event loop in a thread, and a ``requests`` session onto them."""

    apps: dict[str, FastAPI]
    settings: dict[str, ServiceSettings]
    session: requests.Session
    hosts: dict[str, str]

    def url(self, service: str, path: str = "") -> str:
        return f"http://{self.hosts[service]}{path}"


def _reset_vhost() -> None:
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True, check=False)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", VHOST], capture_output=True, check=False)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )


def _settings(service: str, tmp: Path) -> ServiceSettings:
    cls = SETTINGS_CLASSES[service]
    base = fresh_database(service, cls)
    urls: dict[str, Any] = {
        f"{name.split('_')[0].upper()}_SERVICE_URL": f"http://{host}"
        for name, host in HOSTS.items()
    }
    extra: dict[str, Any] = {}
    if service == "auth_service":
        extra = {
            "UPLOAD_DIR": tmp / "uploads",
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST": 1024,
            "ARGON2_PARALLELISM": 1,
        }
    elif service == "notification_service":
        extra = {"MAIL_DIR": tmp / "mail"}
    elif service == "payment_service":
        extra = {"PUBLIC_BASE_URL": "http://gateway.fuzz"}
    return cls(
        DB_NAME=base.db_name,
        # PostgreSQL's connections are shared with the test stack: five small pools here.
        DB_POOL_SIZE=2,
        DB_MAX_OVERFLOW=4,
        REDIS_DB=REDIS_DB,
        RABBITMQ_VHOST=VHOST,
        APP_ENV="test",
        **urls,
        **extra,
    )


def _create_app(service: str, settings: ServiceSettings, router: InProcessNetwork) -> FastAPI:
    if service == "auth_service":
        assert isinstance(settings, AuthSettings)
        return create_auth_app(settings)
    if service == "event_service":
        assert isinstance(settings, EventSettings)
        return create_event_app(settings)
    if service == "booking_service":
        assert isinstance(settings, BookingSettings)
        return create_booking_app(settings)
    if service == "payment_service":
        assert isinstance(settings, PaymentSettings)
        app = create_payment_app(settings)
        app.state.provider_transport = router
        return app
    assert isinstance(settings, NotificationSettings)
    return create_notification_app(settings, internal_transport=router)


def _seed(stack: FuzzStack) -> None:
    """Users 2 and 3, an event, a booking and its payment, so ids 1 lead somewhere."""
    http = stack.session

    def headers(service: str, caller: Caller) -> dict[str, str]:
        settings = stack.settings[service]
        return caller.headers(settings.jwt_secret, "/", settings.service_token)

    response = http.post(
        stack.url("auth_service", "/api/auth/register"),
        json={"email": "fuzz-user@example.com", "password": PASSWORD, "role": "user"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["user"]["id"] == USER.user_id
    response = http.post(
        stack.url("auth_service", "/api/auth/register"),
        data={"email": "fuzz-organizer@example.com", "password": PASSWORD, "role": "organizer"},
        files={"document": ("document.pdf", PDF_DOCUMENT, "application/pdf")},
    )
    assert response.status_code == 201, response.text
    assert response.json()["user"]["id"] == ORGANIZER.user_id
    response = http.post(
        stack.url("event_service", "/api/events"),
        json=event_payload(),
        headers=headers("event_service", ORGANIZER),
    )
    assert response.status_code == 201, response.text
    response = http.post(
        stack.url("booking_service", "/api/bookings"),
        json={"event_id": response.json()["event"]["id"], "seats": [{"id": "vip-1-1"}]},
        headers=headers("booking_service", USER),
    )
    assert response.status_code == 201, response.text
    response = http.post(
        stack.url("payment_service", "/api/payments/initialize"),
        json={"booking_id": response.json()["booking"]["id"], "first_name": "Fuzz"},
        headers=headers("payment_service", USER),
    )
    assert response.status_code == 200, response.text


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


@contextlib.contextmanager
def serving(
    apps: dict[str, FastAPI],
    router: InProcessNetwork,
    on_start: Callable[[], Awaitable[None]] | None = None,
) -> Iterator[requests.Session]:
    """Run ``apps`` (lifespans included) on a loop in a thread; a session reaches them."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run_loop, args=(loop,), name="fuzz-apps", daemon=True)
    thread.start()
    lifespans = contextlib.AsyncExitStack()

    async def start() -> None:
        for app in apps.values():
            await lifespans.enter_async_context(app.router.lifespan_context(app))
        if on_start is not None:
            await on_start()

    session = requests.Session()
    session.mount("http://", InProcessAdapter(loop, router))
    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(120)
        yield session
    finally:
        session.close()
        asyncio.run_coroutine_threadsafe(lifespans.aclose(), loop).result(120)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _routed_session(session: requests.Session) -> type[requests.Session]:
    adapter = session.get_adapter("http://")
    base: type[requests.Session] = schemathesis_requests.SameHostRedirectsSession

    class RoutedSession(base):  # type: ignore[valid-type,misc]
        def __init__(self) -> None:
            super().__init__()
            self.mount("http://", adapter)

    return RoutedSession


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzStack]:
    """The five services running in-process, wired to each other, with a little data."""
    _reset_vhost()
    Redis(db=REDIS_DB).flushdb()
    tmp = tmp_path_factory.mktemp("fuzz")
    router = InProcessNetwork()
    settings = {service: _settings(service, tmp) for service in HOSTS}
    apps = {service: _create_app(service, settings[service], router) for service in HOSTS}
    for service, app in apps.items():
        router.add(HOSTS[service], app)

    async def wire() -> None:
        for service, app in apps.items():
            if service != "notification_service":  # it takes the transport itself
                await route_internal_calls(app, router)

    with serving(apps, router, on_start=wire) as session, pytest.MonkeyPatch.context() as patch:
        stack = FuzzStack(apps=apps, settings=settings, session=session, hosts=HOSTS)
        _seed(stack)
        # Checks that send requests of their own (ignored_auth's probes without the
        # credentials) open a session of their own: it reaches the apps too.
        patch.setattr(schemathesis_requests, "SameHostRedirectsSession", _routed_session(session))
        yield stack


@pytest.fixture(scope="module", autouse=True)
def _smtp_for_the_stack() -> None:
    """These tests run no stack, so they need none of its SMTP server (tests/conftest.py)."""


# -- the checks -----------------------------------------------------------------------


def _is_browser_page(case: Case[Any]) -> bool:
    """The simulated provider's hosted checkout is HTML for a browser, its errors too."""
    return case.path.startswith(BROWSER_PAGES)


def check_case(stack: FuzzStack, service: str, case: Case[Any]) -> None:
    settings = stack.settings[service]
    caller = caller_for(case)
    headers = caller.headers(settings.jwt_secret, case.path, settings.service_token)
    try:
        response = case.call(
            base_url=stack.url(service),
            session=stack.session,
            headers=headers,
            timeout=CALL_TIMEOUT,
        )
    except requests.exceptions.Timeout:
        pytest.fail(
            f"{case.operation.label} hung for over {CALL_TIMEOUT}s as {caller.name}:\n"
            f"{case.as_curl_command(headers=headers)}"
        )
    where = (
        f"{case.operation.label} as {caller.name} -> {response.status_code} "
        f"{response.text[:500]}\n{case.as_curl_command(headers=headers)}"
    )
    assert response.status_code < 500, f"server error: {where}"
    if 400 <= response.status_code < 500 and not _is_browser_page(case):
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/json"), f"non-JSON error: {where}"
        body = response.json()
        assert isinstance(body, dict), f"error body is not an object: {where}"
        assert isinstance(body.get("error"), str), f"no 'error' message: {where}"
        assert body["error"], f"empty 'error' message: {where}"
    # Every schemathesis check (`--checks all`) but those NOT_CHECKED: among them, every
    # status answered is documented, with its content type and body schema.
    case.validate_response(
        response,
        excluded_checks=NOT_CHECKED,
        headers=headers,
        transport_kwargs={"session": stack.session, "headers": headers},
    )


#: schemathesis checks these tests leave out, and why
NOT_CHECKED = [
    # The schema cannot say all a request must be (an event in the future, a price for a
    # class with seats, a booking that exists): a schema-valid request the domain refuses
    # answers 400, 404 or 409 by design.
    checks.positive_data_acceptance,
    # Query parameters nobody reads are ignored, as HTTP APIs do (schemathesis sends one).
    checks.negative_data_rejection,
    # A method a path lacks can match a sibling's path parameter: PUT /api/events/my is
    # PUT /api/events/{event_id} with an id that is not a number, a 400 rather than a 405.
    checks.unsupported_method,
    # Starlette's 405 names the methods of the first route of the path only (noted in
    # issue 17's report); the status itself is right.
    checks.allow_header_conformance,
]

FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@auth_schema.parametrize()
@FUZZ_SETTINGS
def test_auth_service_answers_any_request_without_a_server_error(
    case: Case[Any], fuzz_stack: FuzzStack
) -> None:
    check_case(fuzz_stack, "auth_service", case)


@event_schema.parametrize()
@FUZZ_SETTINGS
def test_event_service_answers_any_request_without_a_server_error(
    case: Case[Any], fuzz_stack: FuzzStack
) -> None:
    check_case(fuzz_stack, "event_service", case)


@booking_schema.parametrize()
@FUZZ_SETTINGS
def test_booking_service_answers_any_request_without_a_server_error(
    case: Case[Any], fuzz_stack: FuzzStack
) -> None:
    check_case(fuzz_stack, "booking_service", case)


@payment_schema.parametrize()
@FUZZ_SETTINGS
def test_payment_service_answers_any_request_without_a_server_error(
    case: Case[Any], fuzz_stack: FuzzStack
) -> None:
    check_case(fuzz_stack, "payment_service", case)


@notification_schema.parametrize()
@FUZZ_SETTINGS
def test_notification_service_answers_any_request_without_a_server_error(
    case: Case[Any], fuzz_stack: FuzzStack
) -> None:
    check_case(fuzz_stack, "notification_service", case)


@pytest.mark.parametrize("service", list(ROUTERS))
def test_the_fuzzed_schema_is_the_one_the_service_serves(
    service: str, fuzz_stack: FuzzStack
) -> None:
    served = fuzz_stack.session.get(fuzz_stack.url(service, "/openapi.json"))
    assert served.status_code == 200
    assert served.json()["paths"] == _openapi(ROUTERS[service])["paths"]


def test_the_checks_catch_a_hang_a_crash_and_an_error_that_is_not_json() -> None:
    """The fuzz tests above can fail: each kind of breakage is caught and named."""
    toy = FastAPI()

    @toy.get("/hang")
    async def hang() -> None:
        await asyncio.sleep(CALL_TIMEOUT * 4)

    @toy.get("/crash")
    async def crash() -> None:
        raise RuntimeError("a bug")

    @toy.get("/teapot")
    async def teapot() -> PlainTextResponse:
        return PlainTextResponse("short and stout", status_code=418)

    @toy.get("/undocumented")
    async def undocumented() -> JSONResponse:
        return JSONResponse({"error": "taken"}, status_code=409)

    router = InProcessNetwork()
    router.add("toy.fuzz", toy)
    schema = schemathesis.openapi.from_dict(toy.openapi())
    with serving({"toy": toy}, router) as session:
        stack = FuzzStack(
            apps={"toy": toy},
            settings={"toy": ServiceSettings()},
            session=session,
            hosts={"toy": "toy.fuzz"},
        )
        for path, symptom in [
            ("/hang", "hung for over"),
            ("/crash", "server error"),
            ("/teapot", "non-JSON error"),
            ("/undocumented", "Undocumented status code"),
        ]:
            with pytest.raises(
                (AssertionError, pytest.fail.Exception, FailureGroup), match=symptom
            ):
                check_case(stack, "toy", schema[path]["GET"].Case())
