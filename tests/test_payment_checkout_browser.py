"""The hosted checkout in a real headless Chromium (Debian's chromium + chromium-driver).

A person opens the checkout_url, reads what they are paying for, presses Pay and is sent
back to the front end's payment page (``FRONTEND_URL/payment/success?tx_ref=...``, as the
original; no front end runs here, so the browser only shows that address), then opens the
provider's receipt; the booking gets confirmed by the saga behind it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import Mailbox, gateway_client
from tests.support_auth import approved_organizer, bearer
from tests.support_booking import new_buyer, post_booking, wait_for_booking_status
from tests.support_events import create_event
from tests.support_payment import initialize_payment

pytestmark = pytest.mark.stack

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT_DIR = Path(__file__).resolve().parent.parent / ".run" / "test" / "screenshots"


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    for binary in (CHROMIUM, CHROMEDRIVER):
        assert Path(binary).exists(), f"{binary} missing: scripts/bootstrap.sh installs it"
    profile = tempfile.mkdtemp(prefix="checkout-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1024,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _pay_in_browser(driver: WebDriver, checkout_url: str) -> dict[str, Any]:
    """What a person sees on the checkout, then Pay, where it sends them, and the receipt."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    driver.get(checkout_url)
    seen = {
        "title": driver.title,
        "event": driver.find_element(By.ID, "event-title").text,
        "amount": driver.find_element(By.ID, "amount").text,
        "description": driver.find_element(By.ID, "description").text,
        "pay_label": driver.find_element(By.ID, "pay").text,
        "decline_label": driver.find_element(By.ID, "decline").text,
    }
    driver.save_screenshot(str(SCREENSHOT_DIR / "checkout.png"))
    driver.find_element(By.ID, "pay").click()
    WebDriverWait(driver, 20).until(expected_conditions.url_contains("/payment/success"))
    seen["return_url"] = driver.current_url
    driver.get(f"{checkout_url}/receipt")
    seen["headline"] = driver.find_element(By.ID, "headline").text
    driver.save_screenshot(str(SCREENSHOT_DIR / "receipt.png"))
    return seen


async def test_a_person_pays_on_the_checkout_page_and_the_booking_is_confirmed(
    client: httpx.AsyncClient, mailbox: Mailbox, browser: WebDriver
) -> None:
    async with gateway_client() as admin_client:
        organizer = await approved_organizer(client, mailbox, admin_client)
    event = await create_event(
        client,
        headers=bearer(organizer["access_token"]),
        title="Browser Night",
        price_vip="450.50",
    )
    buyer = await new_buyer(client, mailbox)
    created = await post_booking(client, buyer, event["id"], ["vip-1-1", "normal-1-1"])
    assert created.status_code == 201, created.text
    booking = created.json()["booking"]
    checkout = await initialize_payment(client, booking["id"], headers=buyer.headers)

    seen = await asyncio.to_thread(_pay_in_browser, browser, checkout["checkout_url"])

    assert seen["event"] == "Browser Night"
    assert seen["amount"] == "ETB 600.50"
    assert "VIP row 1 seat 1" in seen["description"]
    assert "NORMAL row 1 seat 1" in seen["description"]
    assert seen["pay_label"] == "Pay ETB 600.50"
    assert seen["decline_label"] == "Decline"
    assert seen["headline"] == "Payment successful"
    assert seen["return_url"] == (
        f"http://localhost:3000/payment/success?tx_ref={checkout['tx_ref']}&status=success"
    )
    await wait_for_booking_status(client, buyer, booking["id"], "confirmed")
