"""The payment domain's expected failures, each with its HTTP status."""

from __future__ import annotations

from ticketing_common.errors import Conflict, Unauthorized


class BookingNotPayable(Conflict):
    """Only a pending booking whose hold has not run out can be paid."""

    code = "booking_not_payable"


class PaymentAlreadyMade(Conflict):
    code = "payment_already_made"


class AmountMismatch(Conflict):
    """The buyer named an amount other than the booking's: nobody pays a sum they did not
    see (the original charged the client's ``amount``)."""

    code = "amount_mismatch"


class InvalidSignature(Unauthorized):
    """A provider callback without a genuine signature."""

    code = "invalid_signature"


class StaleSignature(Unauthorized):
    """A genuine callback signed too long ago: a replay, or a clock far off."""

    code = "stale_signature"
