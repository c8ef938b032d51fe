"""auth_service's domain errors: each carries its HTTP status and a stable ``code``."""

from __future__ import annotations

from ticketing_common.errors import BadRequest, Conflict, Unauthorized


class InvalidDocument(BadRequest):
    code = "invalid_document"


class WeakPassword(BadRequest):
    code = "weak_password"


class WrongPassword(BadRequest):
    code = "wrong_password"


class InvalidCode(BadRequest):
    code = "invalid_code"


class CodeAttemptsExhausted(BadRequest):
    code = "code_attempts_exhausted"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class RefreshTokenReused(Unauthorized):
    code = "refresh_token_reused"


# Login's refusals of an account that may not sign in: 401 with the original's texts, which
# its front end compares exactly (``account rejected`` offers to reapply).


class EmailNotVerified(Unauthorized):
    code = "email_not_verified"


class OrganizerPending(Unauthorized):
    code = "organizer_pending"


class OrganizerRejected(Unauthorized):
    code = "organizer_rejected"


class EmailTaken(Conflict):
    code = "email_taken"


class NotAnOrganizer(Conflict):
    code = "not_an_organizer"
