"""The simulated provider's hosted checkout, served under ``/api/payments/checkout``.

These are the provider's pages, not payment_service's API: a buyer's browser opens the
``checkout_url`` that initialize returned, and Pay / Decline are plain HTML forms.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, RedirectResponse

from payment_service import checkout_pages
from payment_service.api.deps import SimulatedDep
from payment_service.providers import ProviderTransactionNotFound, SimulatedProvider
from payment_service.settings import ForcedOutcome

router = APIRouter(prefix="/api/payments/checkout", tags=["simulated checkout"])

TxRef = Annotated[str, Path(min_length=1, max_length=64)]
# Never cached, never framed by another site (a payment page must not be clickjacked).
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


#: the hosted pages answer an unknown checkout with an HTML page, as a browser needs
_HTML_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such checkout (an HTML page)", "content": {"text/html": {}}}
}
_DECIDED: dict[int | str, dict[str, Any]] = {
    303: {"description": "to the merchant's return page (or the receipt)"},
    **_HTML_NOT_FOUND,
}


def _not_found() -> HTMLResponse:
    return HTMLResponse(checkout_pages.not_found_page(), status_code=404, headers=_PAGE_HEADERS)


@router.get("/{tx_ref}", response_class=HTMLResponse, responses=_HTML_NOT_FOUND)
async def checkout_page(tx_ref: TxRef, provider: SimulatedDep) -> HTMLResponse:
    """The hosted checkout: amount, event and seats, with Pay and Decline."""
    try:
        txn = await provider.checkout(tx_ref)
    except ProviderTransactionNotFound:
        return _not_found()
    return HTMLResponse(checkout_pages.checkout_page(txn), headers=_PAGE_HEADERS)


async def _decide(
    provider: SimulatedProvider, tx_ref: str, outcome: ForcedOutcome
) -> HTMLResponse | RedirectResponse:
    try:
        txn = await provider.complete(tx_ref, outcome)
    except ProviderTransactionNotFound:
        return _not_found()
    return RedirectResponse(checkout_pages.return_location(txn), status_code=303)


@router.post("/{tx_ref}/pay", response_model=None, responses=_DECIDED)
async def pay(tx_ref: TxRef, provider: SimulatedDep) -> HTMLResponse | RedirectResponse:
    return await _decide(provider, tx_ref, "success")


@router.post("/{tx_ref}/decline", response_model=None, responses=_DECIDED)
async def decline(tx_ref: TxRef, provider: SimulatedDep) -> HTMLResponse | RedirectResponse:
    return await _decide(provider, tx_ref, "failed")


@router.get("/{tx_ref}/receipt", response_class=HTMLResponse, responses=_HTML_NOT_FOUND)
async def receipt(tx_ref: TxRef, provider: SimulatedDep) -> HTMLResponse:
    try:
        txn = await provider.checkout(tx_ref)
    except ProviderTransactionNotFound:
        return _not_found()
    return HTMLResponse(checkout_pages.receipt_page(txn), headers=_PAGE_HEADERS)
