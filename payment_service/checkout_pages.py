"""The simulated provider's hosted pages: the checkout a buyer pays on, and its receipt."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from html import escape
from pathlib import Path
from string import Template
from urllib.parse import parse_qs, urlencode, urlsplit

from payment_service.providers.simulated import LedgerEntry

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHECKOUT_PATH = "/api/payments/checkout"

_ACTIONS = """<div class="actions">
    <form method="post" action="{base}/{tx_ref}/pay"><button id="pay" type="submit">Pay {amount}</button></form>
    <form method="post" action="{base}/{tx_ref}/decline"><button id="decline" type="submit">Decline</button></form>
  </div>"""  # noqa: E501
_SETTLED = '<p class="status" id="status">This payment is already {status}.</p>'

_HEADLINES = {
    "success": ("Payment successful", "Your tickets are being issued and will arrive by email."),
    "failed": ("Payment declined", "No money was taken. You can start a new booking."),
    "refunded": ("Payment refunded", "The amount was returned to you."),
    "pending": ("Payment not completed", "This checkout is still waiting for your decision."),
}


@lru_cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def format_amount(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,.2f}"


def checkout_page(txn: LedgerEntry) -> str:
    amount = escape(format_amount(txn.amount, txn.currency))
    tx_ref = escape(txn.tx_ref)
    if txn.status == "pending":
        actions = _ACTIONS.format(base=CHECKOUT_PATH, tx_ref=tx_ref, amount=amount)
    else:
        actions = _SETTLED.format(status=escape(txn.status))
    return _template("checkout.html").substitute(
        title=escape(txn.title),
        description=escape(txn.description),
        amount_text=amount,
        tx_ref=tx_ref,
        customer=escape(txn.customer_name or txn.customer_email or "guest"),
        actions=actions,
    )


def receipt_page(txn: LedgerEntry) -> str:
    headline, detail = _HEADLINES.get(txn.status, _HEADLINES["pending"])
    return _template("receipt.html").substitute(
        headline=escape(headline), detail=escape(detail), tx_ref=escape(txn.tx_ref)
    )


def not_found_page() -> str:
    return _template("receipt.html").substitute(
        headline="Checkout not found",
        detail="This payment link is unknown or has been mistyped.",
        tx_ref="-",
    )


def return_location(txn: LedgerEntry) -> str:
    """Where the browser goes after a decision: the merchant's return URL with the outcome
    (and the ``tx_ref``, unless the URL names it already), else the receipt."""
    if not txn.return_url:
        return f"{CHECKOUT_PATH}/{txn.tx_ref}/receipt"
    query = {"status": txn.status}
    if "tx_ref" not in parse_qs(urlsplit(txn.return_url).query):
        query = {"tx_ref": txn.tx_ref, **query}
    separator = "&" if "?" in txn.return_url else "?"
    return txn.return_url + separator + urlencode(query)
