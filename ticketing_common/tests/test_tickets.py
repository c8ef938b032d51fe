"""Ticket codes: one signed code per seat, and the first tickets' per-booking codes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ticketing_common.tickets import (
    InvalidTicketCode,
    TicketCode,
    sign_booking_code,
    sign_ticket_code,
    verify_ticket_code,
)

SECRET = "ticket-test-secret"


def test_a_seats_code_verifies_to_its_booking_event_and_seat() -> None:
    code = sign_ticket_code(4821, 17, "vip-1-10", SECRET)

    assert code.startswith("TKT2.4821.17.vip-1-10.")
    assert verify_ticket_code(code, SECRET) == TicketCode(4821, 17, "vip-1-10")


def test_each_seat_of_a_booking_has_its_own_code() -> None:
    codes = {sign_ticket_code(4821, 17, seat, SECRET) for seat in ("vip-1-1", "vip-1-2")}

    assert len(codes) == 2


def test_a_first_ticket_code_stands_for_its_whole_booking() -> None:
    code = sign_booking_code(4821, 17, SECRET)

    assert code.startswith("TKT1.4821.17.")
    assert verify_ticket_code(code, SECRET) == TicketCode(4821, 17, None)


def test_a_scanners_line_end_is_ignored() -> None:
    code = sign_ticket_code(4821, 17, "normal-12-3", SECRET)

    assert verify_ticket_code(f" {code}\r\n", SECRET).seat_id == "normal-12-3"


def _edit_signature(code: str) -> str:
    return code[:-1] + ("A" if code[-1] != "A" else "B")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda c: c.replace("TKT2.4821.", "TKT2.4822."), id="other-booking"),
        pytest.param(lambda c: c.replace(".17.", ".18."), id="other-event"),
        pytest.param(lambda c: c.replace("vip-1-10", "vip-1-11"), id="other-seat"),
        pytest.param(lambda c: c.replace("vip-1-10", "vvip-1-10"), id="better-class"),
        pytest.param(_edit_signature, id="edited-signature"),
        pytest.param(lambda c: c.rsplit(".", 1)[0], id="no-signature"),
        pytest.param(lambda c: "TKT3" + c[4:], id="unknown-version"),
        pytest.param(lambda c: "TKT1" + c[4:], id="older-version"),
        pytest.param(lambda c: c + "x", id="trailing-garbage"),
        pytest.param(lambda c: c + "\nx", id="second-line"),
        pytest.param(lambda c: c.replace("vip-1-10", "vip-0-10"), id="not-a-seat-id"),
        pytest.param(lambda c: c.replace("vip-1-10", "box-1-10"), id="no-such-class"),
        pytest.param(lambda c: c.replace(".4821.", ".04821."), id="leading-zero"),
        pytest.param(lambda c: c.lower(), id="lower-case"),
        pytest.param(lambda c: "", id="empty"),
        pytest.param(lambda c: c * 3, id="too-long"),
    ],
)
def test_an_altered_code_is_refused(tamper: Callable[[str], str]) -> None:
    code = sign_ticket_code(4821, 17, "vip-1-10", SECRET)

    with pytest.raises(InvalidTicketCode):
        verify_ticket_code(tamper(code), SECRET)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda c: c.replace("TKT1.4821.", "TKT1.4822."), id="other-booking"),
        pytest.param(_edit_signature, id="edited-signature"),
        pytest.param(lambda c: "TKT2" + c[4:], id="newer-version"),
    ],
)
def test_an_altered_first_ticket_code_is_refused(tamper: Callable[[str], str]) -> None:
    code = sign_booking_code(4821, 17, SECRET)

    with pytest.raises(InvalidTicketCode):
        verify_ticket_code(tamper(code), SECRET)


def test_a_code_signed_with_another_secret_is_refused() -> None:
    for forged in (
        sign_ticket_code(4821, 17, "vip-1-10", "someone-elses-secret"),
        sign_booking_code(4821, 17, "someone-elses-secret"),
    ):
        with pytest.raises(InvalidTicketCode):
            verify_ticket_code(forged, SECRET)


def test_a_seat_id_that_is_not_one_is_never_signed() -> None:
    with pytest.raises(ValueError, match="not a seat id"):
        sign_ticket_code(4821, 17, "vip.1.10", SECRET)
