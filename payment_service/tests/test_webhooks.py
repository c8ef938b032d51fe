"""The callback signature: HMAC-SHA256 over ``f"{t}." + body`` with a bounded age."""

from __future__ import annotations

import pytest

from payment_service.errors import InvalidSignature, StaleSignature
from payment_service.webhooks import check_signature, sign

SECRET = "shared-secret"
BODY = b'{"tx_ref":"tkt-1-abc"}'
NOW = 1_800_000_000


def test_a_fresh_signature_over_the_exact_body_is_accepted() -> None:
    check_signature(SECRET, sign(SECRET, BODY, NOW), BODY, now=NOW + 10, max_age_seconds=300)


def test_the_signature_header_names_the_time_and_the_mac() -> None:
    header = sign(SECRET, BODY, NOW)

    assert header.startswith(f"t={NOW},v1=")
    assert len(header.split("v1=")[1]) == 64


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"t={NOW}",
        "v1=abcdef",
        f"t={NOW},v1=" + "0" * 64,
        sign("another-secret", BODY, NOW),
        sign(SECRET, BODY + b" ", NOW),
        sign(SECRET, BODY, NOW).replace(f"t={NOW}", f"t={NOW + 1}"),
    ],
)
def test_anything_but_the_genuine_signature_is_invalid(header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        check_signature(SECRET, header, BODY, now=NOW, max_age_seconds=300)


@pytest.mark.parametrize("age", [301, -301, 86_400])
def test_a_genuine_signature_outside_the_window_is_stale(age: int) -> None:
    with pytest.raises(StaleSignature):
        check_signature(SECRET, sign(SECRET, BODY, NOW - age), BODY, now=NOW, max_age_seconds=300)
