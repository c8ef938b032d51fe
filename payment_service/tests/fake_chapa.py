"""A local fake of Chapa's API, served over real HTTP on 127.0.0.1 by the tests.

It follows Chapa's documented shapes: ``POST /v1/transaction/initialize``,
``GET /v1/transaction/verify/{tx_ref}`` and ``POST /v1/refund/{tx_ref}``, with a bearer
secret key, ``{"message", "status", "data"}`` bodies and amounts as JSON numbers on the
way back. Tests play the buyer with :meth:`FakeChapa.pay` / :meth:`FakeChapa.decline` and
inject faults (an error status or a slow answer) for the next requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

SECRET_KEY = "CHASECK_TEST-fake-0123456789"


@dataclass
class FakeTransaction:
    tx_ref: str
    amount: Decimal
    currency: str
    email: str | None
    first_name: str | None
    last_name: str | None
    customization: dict[str, Any]
    reference: str = field(default_factory=lambda: f"CH{secrets.token_hex(6)}")
    status: str = "pending"
    refund_reference: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Fault:
    status: int | None = None
    delay: float = 0.0


@dataclass
class FakeChapa:
    base_url: str = ""
    transactions: dict[str, FakeTransaction] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def reset(self) -> None:
        self.transactions.clear()
        self.requests.clear()
        self.faults.clear()

    # The buyer, on Chapa's hosted page.

    def pay(self, tx_ref: str) -> None:
        self.transactions[tx_ref].status = "success"

    def decline(self, tx_ref: str) -> None:
        self.transactions[tx_ref].status = "failed"

    def fail_next(self, count: int, status: int = 503) -> None:
        self.faults.extend(Fault(status=status) for _ in range(count))

    def delay_next(self, seconds: float, count: int = 1) -> None:
        self.faults.extend(Fault(delay=seconds) for _ in range(count))

    def paths(self, method: str | None = None) -> list[str]:
        return [path for m, path, _ in self.requests if method is None or m == method]


def _answer(status: int, message: str, data: Any = None, state: str = "success") -> Response:
    body = {"message": message, "status": state, "data": data}
    return JSONResponse(body, status_code=status)


def _failed(status: int, message: str) -> Response:
    return _answer(status, message, None, "failed")


def _transaction_json(txn: FakeTransaction) -> Response:
    """Chapa answers amounts as JSON numbers; written by hand so no float is involved."""
    data = {
        "first_name": txn.first_name,
        "last_name": txn.last_name,
        "email": txn.email,
        "currency": txn.currency,
        "amount": "__AMOUNT__",
        "charge": "__CHARGE__",
        "mode": "test",
        "method": "test",
        "type": "API",
        "status": txn.status,
        "reference": txn.reference,
        "tx_ref": txn.tx_ref,
        "customization": txn.customization,
        "meta": None,
        "created_at": txn.created_at.isoformat(),
        "updated_at": txn.created_at.isoformat(),
    }
    text = json.dumps({"message": "Payment details", "status": "success", "data": data})
    charge = (txn.amount * Decimal("0.035")).quantize(Decimal("0.01"))
    text = text.replace('"__AMOUNT__"', str(txn.amount)).replace('"__CHARGE__"', str(charge))
    return Response(text, media_type="application/json")


def build_app(fake: FakeChapa) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record_and_inject(request: Request, call_next: Any) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        fake.requests.append((request.method, request.url.path, body))
        if request.headers.get("authorization") != f"Bearer {SECRET_KEY}":
            return _failed(401, "Invalid API Key or User doesn't exist")
        if fake.faults:
            fault = fake.faults.pop(0)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return _failed(fault.status, "Service temporarily unavailable")
        response: Response = await call_next(request)
        return response

    @app.post("/v1/transaction/initialize")
    async def initialize(request: Request) -> Response:
        body = await request.json()
        try:
            amount = Decimal(str(body["amount"]))
            tx_ref = str(body["tx_ref"])
        except (KeyError, InvalidOperation):
            return _failed(400, "amount and tx_ref are required")
        if not isinstance(body["amount"], str) or amount <= 0:
            return _failed(400, "amount must be a positive decimal string")
        if tx_ref in fake.transactions:
            return _failed(400, "Transaction reference has been used before")
        fake.transactions[tx_ref] = FakeTransaction(
            tx_ref=tx_ref,
            amount=amount,
            currency=str(body.get("currency", "ETB")),
            email=body.get("email"),
            first_name=body.get("first_name"),
            last_name=body.get("last_name"),
            customization=dict(body.get("customization") or {}),
        )
        token = secrets.token_urlsafe(12)
        return _answer(
            200, "Hosted Link", {"checkout_url": f"{fake.base_url}/checkout/payment/{token}"}
        )

    @app.get("/v1/transaction/verify/{tx_ref}")
    async def verify(tx_ref: str) -> Response:
        txn = fake.transactions.get(tx_ref)
        if txn is None:
            return _failed(404, "Invalid transaction or Transaction not found")
        return _transaction_json(txn)

    @app.post("/v1/refund/{tx_ref}")
    async def refund(tx_ref: str, request: Request) -> Response:
        body = await request.json()
        txn = fake.transactions.get(tx_ref)
        if txn is None:
            return _failed(404, "Invalid transaction or Transaction not found")
        reference = str(body.get("reference") or f"RF{secrets.token_hex(6)}")
        if txn.status == "refunded" and txn.refund_reference == reference:
            pass  # the same refund asked again: answer as the first time
        elif txn.status != "success":
            return _failed(400, "Transaction is not eligible for refund")
        elif Decimal(str(body.get("amount", txn.amount))) != txn.amount:
            return _failed(400, "Refund amount must equal the transaction amount")
        else:
            txn.status = "refunded"
            txn.refund_reference = reference
        data = {
            "reference": txn.refund_reference,
            "tx_ref": tx_ref,
            "amount": str(txn.amount),
            "currency": txn.currency,
            "status": "refunded",
            "created_at": datetime.now(UTC).isoformat(),
        }
        return _answer(200, "Refund processed successfully", data)

    return app


@contextlib.asynccontextmanager
async def serve_fake_chapa() -> AsyncIterator[FakeChapa]:
    """Run the fake on a free loopback port in this event loop until the block ends."""
    fake = FakeChapa()
    config = uvicorn.Config(
        build_app(fake), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    else:
        raise RuntimeError("fake Chapa did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
