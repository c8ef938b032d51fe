"""postman_collection.json: its shape, its coverage of the API, and a newman run of it.

The file checks run anywhere: the collection is Postman v2.1, every request asserts its
status, every public route of the five services (from their OpenAPI) has a request, and
every variable a request uses comes from the environment files or an earlier script.

The journey runs the collection with newman against the gateway of the running test
stack, folder by folder. newman cannot read mail, so between folders this test reads the
verification and reset codes from the ``mailbox`` fixture (the stack's SMTP server) and
hands them to the next run with ``--env-var``; tokens and ids travel in the environment
newman exports after each run. Accounts get unique addresses per run, so the journey
passes on a fresh database and on every re-run.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devstack.config import ROOT, SERVICES
from tests.conftest import GATEWAY_URL, Mailbox
from tests.support_auth import PASSWORD_RESET, VERIFICATION, code_from_mailbox

COLLECTION = ROOT / "postman_collection.json"
POSTMAN_DIR = ROOT / "postman"
ENVIRONMENTS = sorted(POSTMAN_DIR.glob("*.postman_environment.json"))
TEST_ENVIRONMENT = POSTMAN_DIR / "test-stack.postman_environment.json"
NEWMAN = POSTMAN_DIR / "node_modules" / ".bin" / "newman"
INSTALL_LOCK = Path("/tmp/ticketing-newman-install.lock")
SCHEMA_V2_1 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"

#: the gateway allows 10 r/s per address (burst 20) and newman sends from one address
DELAY_MS = 120
NEWMAN_TIMEOUT = 120.0

#: the journey's runs; the test reads emails between them
PHASES = (
    ("01 Sign up",),
    (
        "02 Verify and approve",
        "03 Events",
        "04 Booking and payment",
        "05 Ticket and sales",
        "06 Check-in",
        "07 Forgot password",
    ),
    ("08 Password reset and sessions", "09 Administration"),
)

_VARIABLE = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SET_IN_SCRIPT = re.compile(r"pm\.environment\.set\(\"([A-Za-z_][A-Za-z0-9_]*)\"")


# --- the collection as data ------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def collection() -> dict[str, Any]:
    return _load(COLLECTION)


def _folders(collection: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {folder["name"]: folder["item"] for folder in collection["item"]}


def _requests(collection: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for items in _folders(collection).values() for item in items]


def _script(item: dict[str, Any], listen: str) -> str:
    return "\n".join(
        "\n".join(event["script"]["exec"])
        for event in item.get("event", [])
        if event["listen"] == listen
    )


def _path_of(item: dict[str, Any]) -> str:
    return "/" + "/".join(item["request"]["url"]["path"])


def _route_matches(template: str, path: str) -> bool:
    """``/api/events/{event_id}`` matches ``/api/events/{{event_id}}``: a parameter is sent
    as a variable, so ``/api/bookings/user`` does not pass for ``/api/bookings/{booking_id}``."""
    wanted, sent = template.strip("/").split("/"), path.strip("/").split("/")
    return len(wanted) == len(sent) and all(
        w == s or (w.startswith("{") and "{{" in s) for w, s in zip(wanted, sent, strict=True)
    )


def _public_routes() -> set[tuple[str, str]]:
    """Every ``/api/...`` operation the five services document in their OpenAPI."""
    routes: set[tuple[str, str]] = set()
    for service in SERVICES:
        app = importlib.import_module(f"{service}.app").create_app()
        for path, operations in app.openapi()["paths"].items():
            if path.startswith("/api/"):
                routes.update((method.upper(), path) for method in operations)
    return routes


def _variables_used(collection: dict[str, Any]) -> dict[str, set[str]]:
    """Variable name → names of the requests that use it (URL, headers, body, auth)."""
    used: dict[str, set[str]] = {}
    for item in _requests(collection):
        for name in _VARIABLE.findall(json.dumps(item["request"])):
            used.setdefault(name, set()).add(item["name"])
    return used


# --- file checks -------------------------------------------------------------------------


def test_collection_is_postman_v2_1_with_named_folders_of_requests(
    collection: dict[str, Any],
) -> None:
    assert collection["info"]["schema"] == SCHEMA_V2_1
    folders = _folders(collection)
    assert list(folders) == [name for phase in PHASES for name in phase]
    names = [item["name"] for item in _requests(collection)]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"request names must be unique (polling repeats by name): {duplicates}"
    for item in _requests(collection):
        assert "request" in item, f"{item['name']} is not a request (no nested folders)"
        assert item["request"]["url"]["raw"].startswith("{{base_url}}/"), item["name"]


def test_every_request_asserts_its_status(collection: dict[str, Any]) -> None:
    silent = [
        item["name"]
        for item in _requests(collection)
        if "pm.response.to.have.status(" not in _script(item, "test")
    ]
    assert not silent, f"requests without a status assertion: {silent}"


def test_the_collection_covers_every_public_route() -> None:
    collection = _load(COLLECTION)
    sent = {(item["request"]["method"], _path_of(item)) for item in _requests(collection)}
    missing = sorted(
        f"{method} {template}"
        for method, template in _public_routes()
        if not any(m == method and _route_matches(template, path) for m, path in sent)
    )
    assert not missing, f"public routes without a request in the collection: {missing}"


def test_every_variable_comes_from_the_environment_or_an_earlier_request(
    collection: dict[str, Any],
) -> None:
    for environment in ENVIRONMENTS:
        provided = {value["key"] for value in _load(environment)["values"]}
        set_so_far: set[str] = set()
        for item in _requests(collection):
            set_so_far.update(_SET_IN_SCRIPT.findall(_script(item, "prerequest")))
            used = set(_VARIABLE.findall(json.dumps(item["request"])))
            unknown = used - provided - set_so_far
            assert not unknown, f"{environment.name}: {item['name']} uses unset {unknown}"
            set_so_far.update(_SET_IN_SCRIPT.findall(_script(item, "test")))


def test_environments_target_the_local_and_test_gateways() -> None:
    urls = {
        env.name: {v["key"]: v["value"] for v in _load(env)["values"]}["base_url"]
        for env in ENVIRONMENTS
    }
    assert urls == {
        "local.postman_environment.json": "http://127.0.0.1:8080",
        "test-stack.postman_environment.json": "http://127.0.0.1:18080",
    }


def test_uploaded_files_exist_and_are_pdfs(collection: dict[str, Any]) -> None:
    sources = {
        field["src"]
        for item in _requests(collection)
        for field in item["request"].get("body", {}).get("formdata", [])
        if field.get("type") == "file"
    }
    assert sources, "the organizer registration uploads a document"
    for source in sources:
        assert (ROOT / source).read_bytes().startswith(b"%PDF-"), source


# --- the journey through the running stack -----------------------------------------------


@pytest.fixture(scope="session")
def newman() -> Path:
    """newman from postman/package-lock.json, installed into postman/node_modules once."""
    if NEWMAN.exists():
        return NEWMAN
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: install Node.js 20 (Debian package nodejs, npm)")
    with INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not NEWMAN.exists():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=POSTMAN_DIR,
                check=True,
                timeout=300,
            )
    return NEWMAN


async def _run_newman(
    newman: Path,
    folders: tuple[str, ...],
    environment: Path,
    exported: Path,
    report: Path,
    **variables: str,
) -> dict[str, Any]:
    """Run ``folders`` in order; returns newman's JSON report (the run must pass)."""
    args = [
        "run",
        str(COLLECTION),
        "--environment",
        str(environment),
        "--export-environment",
        str(exported),
        "--working-dir",
        str(ROOT),
        "--delay-request",
        str(DELAY_MS),
        "--timeout-request",
        "20000",
        "--bail",
        "--color",
        "off",
        "--disable-unicode",
        "--reporters",
        "cli,json",
        "--reporter-json-export",
        str(report),
        "--reporter-cli-no-success-assertions",
    ]
    for folder in folders:
        args += ["--folder", folder]
    for key, value in {"base_url": GATEWAY_URL, **variables}.items():
        args += ["--env-var", f"{key}={value}"]
    process = await asyncio.create_subprocess_exec(
        str(newman),
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), NEWMAN_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"newman {folders} did not finish within {NEWMAN_TIMEOUT:.0f}s")
    if process.returncode != 0:
        log = _ANSI.sub("", output.decode(errors="replace"))
        details = _failures(_load(report)) if report.exists() else "(no report)"
        pytest.fail(f"newman {folders} failed:\n{details}\n\n{log[-8_000:]}")
    return _load(report)


def _failures(report: dict[str, Any]) -> str:
    """Each failed assertion or request with the response that caused it."""
    responses = {
        execution["cursor"]["ref"]: execution.get("response", {})
        for execution in report["run"]["executions"]
    }
    lines = []
    for failure in report["run"]["failures"]:
        response = responses.get(failure.get("cursor", {}).get("ref"), {})
        body = bytes(response.get("stream", {}).get("data", [])).decode(errors="replace")
        lines.append(
            f"- {failure['source'].get('name', '?')}: {failure['error'].get('test', '')}: "
            f"{failure['error']['message']}\n"
            f"  -> {response.get('code', 'no response')} {body[:600]}"
        )
    return "\n".join(lines)


def _environment_values(path: Path) -> dict[str, str]:
    return {value["key"]: str(value["value"]) for value in _load(path)["values"]}


def _check_report(
    report: dict[str, Any], collection: dict[str, Any], folders: tuple[str, ...]
) -> int:
    """Every request of ``folders`` ran and answered, and no assertion failed."""
    run = report["run"]
    assert not run["failures"], [
        f"{f['source']['name']}: {f['error']['message']}" for f in run["failures"]
    ]
    expected = {item["name"] for folder in folders for item in _folders(collection)[folder]}
    executed = {execution["item"]["name"] for execution in run["executions"]}
    assert executed == expected, f"not run: {sorted(expected - executed)}"
    assert all("response" in execution for execution in run["executions"]), "a request failed"
    assertions = run["stats"]["assertions"]
    assert assertions["failed"] == 0
    assert assertions["total"] >= 2 * len(expected)
    return int(assertions["total"])


@pytest.mark.stack
async def test_newman_runs_the_collection_through_the_gateway_end_to_end(
    newman: Path, mailbox: Mailbox, tmp_path: Path, collection: dict[str, Any]
) -> None:
    """register → verify → approve → event → booking → payment → PDF ticket, and the rest."""
    environment = TEST_ENVIRONMENT
    codes: dict[str, str] = {}
    assertions = 0
    for number, folders in enumerate(PHASES, start=1):
        exported = tmp_path / f"environment-{number}.json"
        report = await _run_newman(
            newman, folders, environment, exported, tmp_path / f"report-{number}.json", **codes
        )
        assertions += _check_report(report, collection, folders)
        environment = exported
        values = _environment_values(exported)
        if number == 1:
            codes = {
                "buyer_code": await code_from_mailbox(mailbox, values["buyer_email"], VERIFICATION),
                "organizer_code": await code_from_mailbox(
                    mailbox, values["organizer_email"], VERIFICATION
                ),
            }
            # "Resend a verification code" really sent a second one.
            await mailbox.wait_for(values["applicant_email"], "Verify your email", count=2)
        elif number == 2:
            codes = {
                "reset_code": await code_from_mailbox(
                    mailbox, values["buyer_email"], PASSWORD_RESET
                )
            }
            [ticket] = await mailbox.wait_for(values["buyer_email"], "Your ticket for")
            [attachment] = list(ticket.iter_attachments())
            assert attachment.get_filename() == f"ticket-{values['booking_id']}.pdf"
            assert attachment.get_content().startswith(b"%PDF-")
    assert assertions > 250
