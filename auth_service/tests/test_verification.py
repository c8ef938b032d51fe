"""POST /api/auth/verify-email and /resend-verification."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt

from auth_service.settings import AuthSettings
from auth_service.tests.support import AuthClient, bearer, new_email


async def test_verifying_a_user_returns_a_working_token_pair(
    auth: AuthClient, settings: AuthSettings
) -> None:
    email = new_email()
    await auth.register(email)

    response = await auth.verify(email)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    claims = jwt.decode(body["access_token"], settings.jwt_secret, algorithms=["HS256"])
    assert claims["type"] == "access"
    me = await auth.http.get("/api/auth/me", headers=bearer(body["access_token"]))
    assert me.json()["is_verified"] is True


async def test_the_links_token_verifies_as_the_originals_front_end_sends_it(
    auth: AuthClient,
) -> None:
    """The front end's ``/verify-email`` page posts the link's token as ``code``."""
    email = new_email()
    await auth.register(email)
    token = await auth.link_token(email)

    response = await auth.http.post("/api/auth/verify-email", json={"email": email, "code": token})

    assert len(token) == 64
    assert int(token, 16) >= 0
    assert response.status_code == 200, response.text
    assert {"message", "access_token", "refresh_token"} <= set(response.json())


async def test_the_links_token_verifies_as_token_too_and_uses_up_the_code(
    auth: AuthClient,
) -> None:
    email = new_email()
    await auth.register(email)
    code = await auth.code(email)
    token = await auth.link_token(email)

    by_token = await auth.http.post(
        "/api/auth/verify-email", json={"email": email, "token": token.upper()}
    )
    code_after = await auth.http.post("/api/auth/verify-email", json={"email": email, "code": code})

    assert by_token.status_code == 200
    assert "access_token" in by_token.json()
    assert code_after.status_code == 200
    assert "already verified" in code_after.json()["message"]
    assert "access_token" not in code_after.json()
    used = await auth.sql("SELECT count(*) FROM verification_codes WHERE consumed_at IS NULL")
    assert used.scalar_one() == 0


async def test_a_token_of_another_account_or_a_made_up_one_is_a_wrong_code(
    auth: AuthClient,
) -> None:
    email, other = new_email(), new_email()
    await auth.register(email)
    await auth.register(other)
    others_token = await auth.link_token(other)

    borrowed = await auth.http.post(
        "/api/auth/verify-email", json={"email": email, "token": others_token}
    )
    made_up = await auth.http.post(
        "/api/auth/verify-email", json={"email": email, "code": "ab" * 32}
    )

    assert borrowed.status_code == made_up.status_code == 400
    assert borrowed.json() == made_up.json()
    assert borrowed.json()["code"] == "invalid_code"


async def test_a_verification_token_does_not_reset_a_password(auth: AuthClient) -> None:
    account = await auth.user()
    await auth.http.post("/api/auth/forgot-password", json={"email": account.email})
    token = await auth.link_token(account.email, purpose="password_reset")

    response = await auth.http.post(
        "/api/auth/reset-password",
        json={"email": account.email, "code": token, "new_password": "Brand-New-Secret-7"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_code"


async def test_verify_email_needs_a_code_or_a_token(auth: AuthClient) -> None:
    response = await auth.http.post("/api/auth/verify-email", json={"email": new_email()})

    assert response.status_code == 400
    assert "code" in response.json()["error"]
    assert "token" in response.json()["error"]


async def test_the_verification_message_carries_the_originals_link(
    auth: AuthClient, settings: AuthSettings
) -> None:
    email = new_email()
    await auth.register(email)

    [payload] = await auth.outbox_payloads("email_verification", email)

    link = urlsplit(payload["verify_url"])
    assert f"{link.scheme}://{link.netloc}" == settings.frontend_url
    assert link.path == "/verify-email"
    assert parse_qs(link.query) == {"token": [await auth.link_token(email)], "email": [email]}
    assert payload["code"].isdigit()


async def test_verifying_twice_is_harmless_and_hands_out_no_second_session(
    auth: AuthClient,
) -> None:
    email = new_email()
    await auth.register(email)
    code = await auth.code(email)
    first = await auth.http.post("/api/auth/verify-email", json={"email": email, "code": code})

    second = await auth.http.post("/api/auth/verify-email", json={"email": email, "code": code})

    assert first.status_code == 200
    assert second.status_code == 200
    assert "already verified" in second.json()["message"]
    assert "access_token" not in second.json()
    assert (await auth.login(email)).status_code == 200


async def test_wrong_code_is_400_and_unknown_email_gets_the_same_answer(auth: AuthClient) -> None:
    email = new_email()
    await auth.register(email)

    wrong = await auth.http.post("/api/auth/verify-email", json={"email": email, "code": "1"})
    unknown = await auth.http.post(
        "/api/auth/verify-email", json={"email": new_email(), "code": "123456"}
    )

    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json()


async def test_code_dies_after_too_many_wrong_guesses(
    auth: AuthClient, settings: AuthSettings
) -> None:
    email = new_email()
    await auth.register(email)
    code = await auth.code(email)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(settings.code_max_attempts):
        guess = await auth.http.post("/api/auth/verify-email", json={"email": email, "code": wrong})
        assert guess.status_code == 400

    right = await auth.http.post("/api/auth/verify-email", json={"email": email, "code": code})

    assert right.status_code == 400
    assert right.json()["code"] == "code_attempts_exhausted"


async def test_expired_code_is_refused(auth: AuthClient) -> None:
    email = new_email()
    await auth.register(email)
    await auth.sql("UPDATE verification_codes SET expires_at = now() - interval '1 second'")

    response = await auth.verify(email)

    assert response.status_code == 400
    assert "expired" in response.json()["error"]


async def test_verification_codes_expire(auth: AuthClient, settings: AuthSettings) -> None:
    await auth.register()

    lifetime = (
        await auth.sql("SELECT extract(epoch FROM expires_at - created_at) FROM verification_codes")
    ).scalar_one()

    assert abs(float(lifetime) - settings.verification_code_ttl_seconds) < 5


async def test_pending_organizer_is_verified_without_tokens(auth: AuthClient) -> None:
    email = new_email("org")
    await auth.register_organizer(email)

    response = await auth.verify(email)

    assert response.status_code == 200
    assert "awaiting admin approval" in response.json()["message"]
    assert "access_token" not in response.json()
    assert (
        await auth.sql("SELECT is_verified FROM users WHERE email = :e", e=email)
    ).scalar_one() is True


async def test_resending_replaces_the_code(auth: AuthClient) -> None:
    email = new_email()
    await auth.register(email)
    old = await auth.code(email)

    resent = await auth.http.post("/api/auth/resend-verification", json={"email": email})

    assert resent.status_code == 200
    new = await auth.code(email)
    assert len(await auth.outbox_payloads("email_verification", email)) == 2
    if new != old:
        stale = await auth.http.post("/api/auth/verify-email", json={"email": email, "code": old})
        assert stale.status_code == 400
    assert (await auth.verify(email)).status_code == 200


async def test_resend_answers_the_same_for_unknown_and_verified_addresses(
    auth: AuthClient,
) -> None:
    verified = await auth.user()

    for email in (verified.email, new_email()):
        response = await auth.http.post("/api/auth/resend-verification", json={"email": email})
        assert response.status_code == 200
    assert len(await auth.outbox_payloads("email_verification", verified.email)) == 1


async def test_code_emails_per_address_are_limited(
    auth: AuthClient, settings: AuthSettings
) -> None:
    email = new_email()
    await auth.register(email)

    for _ in range(settings.code_emails_per_window + 2):
        await auth.http.post("/api/auth/resend-verification", json={"email": email})

    sent = await auth.outbox_payloads("email_verification", email)
    assert len(sent) == settings.code_emails_per_window


async def test_a_verified_account_answers_a_wrong_code_like_an_unknown_address(
    auth: AuthClient,
) -> None:
    verified = await auth.user()

    known = await auth.http.post(
        "/api/auth/verify-email", json={"email": verified.email, "code": "123456"}
    )
    unknown = await auth.http.post(
        "/api/auth/verify-email", json={"email": new_email(), "code": "123456"}
    )

    assert known.status_code == unknown.status_code == 400
    assert known.json() == unknown.json()


async def test_accounts_and_unknown_addresses_run_out_of_verification_guesses_alike(
    auth: AuthClient, settings: AuthSettings
) -> None:
    unverified = new_email()
    await auth.register(unverified)
    verified = await auth.user()

    async def guesses(email: str) -> list[tuple[int, dict[str, str]]]:
        answers = []
        for _ in range(settings.code_max_attempts + 1):
            response = await auth.http.post(
                "/api/auth/verify-email", json={"email": email, "code": "000000x"}
            )
            answers.append((response.status_code, response.json()))
        return answers

    answers = [await guesses(email) for email in (unverified, verified.email, new_email())]

    assert answers[0] == answers[1] == answers[2]
    assert answers[0][-1][1]["code"] == "code_attempts_exhausted"


async def test_resend_gives_every_address_fresh_guesses_alike(
    auth: AuthClient, settings: AuthSettings
) -> None:
    unverified = new_email()
    await auth.register(unverified)
    verified = await auth.user()
    emails = (unverified, verified.email, new_email())
    for email in emails:
        for _ in range(settings.code_max_attempts + 1):
            await auth.http.post("/api/auth/verify-email", json={"email": email, "code": "0000x"})

    for email in emails:
        await auth.http.post("/api/auth/resend-verification", json={"email": email})
    after = [
        await auth.http.post("/api/auth/verify-email", json={"email": email, "code": "0000x"})
        for email in emails
    ]

    assert [r.json() for r in after] == [after[0].json()] * 3
    assert after[0].json()["code"] == "invalid_code"
