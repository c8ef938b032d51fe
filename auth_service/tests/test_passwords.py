"""forgot-password, reset-password and change-password."""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI

from auth_service.settings import AuthSettings
from auth_service.tests.support import PASSWORD, AuthClient, asgi_post, bearer, new_email

NEW_PASSWORD = "Brand-New-Secret-7"


async def _reset_code(auth: AuthClient, email: str) -> str:
    response = await auth.http.post("/api/auth/forgot-password", json={"email": email})
    assert response.status_code == 200
    return await auth.code(email, "password_reset")


async def test_forgot_password_answers_the_same_whether_or_not_the_account_exists(
    auth: AuthClient,
) -> None:
    account = await auth.user()
    stranger = new_email()

    known = await auth.http.post("/api/auth/forgot-password", json={"email": account.email})
    unknown = await auth.http.post("/api/auth/forgot-password", json={"email": stranger})

    assert known.status_code == unknown.status_code == 200
    assert known.json() == unknown.json()
    assert len(await auth.outbox_payloads("password_reset", account.email)) == 1
    assert await auth.outbox_payloads("password_reset", stranger) == []


async def test_reset_code_is_six_digits_and_lives_fifteen_minutes(auth: AuthClient) -> None:
    account = await auth.user()
    await _reset_code(auth, account.email)

    [payload] = await auth.outbox_payloads("password_reset", account.email)
    stored = (
        await auth.sql(
            "SELECT code_hash, extract(epoch FROM expires_at - created_at) AS life "
            "FROM verification_codes WHERE purpose = 'password_reset'"
        )
    ).one()

    assert len(payload["code"]) == 6
    assert payload["code"].isdigit()
    assert abs(float(stored.life) - 900) < 5
    assert payload["code"] not in stored.code_hash
    lifetime = datetime.fromisoformat(payload["expires_at"]) - datetime.now(
        datetime.fromisoformat(payload["expires_at"]).tzinfo
    )
    assert 14 * 60 < lifetime.total_seconds() <= 15 * 60


async def test_reset_sets_the_new_password(auth: AuthClient) -> None:
    account = await auth.user()
    code = await _reset_code(auth, account.email)

    response = await auth.http.post(
        "/api/auth/reset-password",
        json={"email": account.email, "code": code, "new_password": NEW_PASSWORD},
    )

    assert response.status_code == 200
    assert (await auth.login(account.email, PASSWORD)).status_code == 401
    assert (await auth.login(account.email, NEW_PASSWORD)).status_code == 200


async def test_reset_code_works_only_once(auth: AuthClient) -> None:
    account = await auth.user()
    code = await _reset_code(auth, account.email)
    body = {"email": account.email, "code": code, "new_password": NEW_PASSWORD}
    assert (await auth.http.post("/api/auth/reset-password", json=body)).status_code == 200

    again = await auth.http.post(
        "/api/auth/reset-password", json={**body, "new_password": "Another-Secret-8"}
    )

    assert again.status_code == 400
    assert (await auth.login(account.email, NEW_PASSWORD)).status_code == 200


async def test_reset_code_dies_after_limited_wrong_attempts(
    auth: AuthClient, settings: AuthSettings
) -> None:
    account = await auth.user()
    code = await _reset_code(auth, account.email)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(settings.code_max_attempts):
        response = await auth.http.post(
            "/api/auth/reset-password",
            json={"email": account.email, "code": wrong, "new_password": NEW_PASSWORD},
        )
        assert response.status_code == 400

    right = await auth.http.post(
        "/api/auth/reset-password",
        json={"email": account.email, "code": code, "new_password": NEW_PASSWORD},
    )

    assert right.status_code == 400
    assert right.json()["code"] == "code_attempts_exhausted"
    failures = (
        await auth.sql("SELECT count(*) FROM audit_logs WHERE action = 'password_reset_failed'")
    ).scalar()
    assert failures == settings.code_max_attempts


async def test_expired_reset_code_is_refused(auth: AuthClient) -> None:
    account = await auth.user()
    code = await _reset_code(auth, account.email)
    await auth.sql("UPDATE verification_codes SET expires_at = now() - interval '1 second'")

    response = await auth.http.post(
        "/api/auth/reset-password",
        json={"email": account.email, "code": code, "new_password": NEW_PASSWORD},
    )

    assert response.status_code == 400


async def test_a_new_reset_code_replaces_the_old_one(auth: AuthClient) -> None:
    account = await auth.user()
    old = await _reset_code(auth, account.email)
    new = await _reset_code(auth, account.email)

    stale = await auth.http.post(
        "/api/auth/reset-password",
        json={"email": account.email, "code": old, "new_password": NEW_PASSWORD},
    )
    fresh = await auth.http.post(
        "/api/auth/reset-password",
        json={"email": account.email, "code": new, "new_password": NEW_PASSWORD},
    )

    assert stale.status_code == (200 if old == new else 400)
    assert fresh.status_code == (400 if old == new else 200)


async def test_reset_signs_out_every_session(auth: AuthClient) -> None:
    account = await auth.user()
    code = await _reset_code(auth, account.email)

    await auth.http.post(
        "/api/auth/reset-password",
        json={"email": account.email, "code": code, "new_password": NEW_PASSWORD},
    )

    assert (await auth.http.get("/api/auth/me", headers=account.headers)).status_code == 401
    refresh = await auth.http.post(
        "/api/auth/refresh-token", json={"refresh_token": account.refresh_token}
    )
    assert refresh.status_code == 401


async def test_reset_lifts_the_login_throttle(auth: AuthClient, settings: AuthSettings) -> None:
    account = await auth.user()
    for _ in range(settings.login_backoff_after_failures):
        await auth.login(account.email, "Wrong-Password-9", ip="203.0.113.9")
    assert (await auth.login(account.email, ip="203.0.113.9")).status_code == 429
    code = await _reset_code(auth, account.email)

    await auth.http.post(
        "/api/auth/reset-password",
        json={"email": account.email, "code": code, "new_password": NEW_PASSWORD},
    )

    assert (await auth.login(account.email, NEW_PASSWORD, ip="203.0.113.9")).status_code == 200


async def test_reset_with_a_weak_password_is_400_and_keeps_the_code(auth: AuthClient) -> None:
    account = await auth.user()
    code = await _reset_code(auth, account.email)

    weak = await auth.http.post(
        "/api/auth/reset-password",
        json={"email": account.email, "code": code, "new_password": "weak"},
    )
    strong = await auth.http.post(
        "/api/auth/reset-password",
        json={"email": account.email, "code": code, "new_password": NEW_PASSWORD},
    )

    assert weak.status_code == 400
    assert "at least one letter and one digit" in weak.json()["error"]
    assert strong.status_code == 200


async def test_reset_for_an_unknown_account_is_the_same_400(auth: AuthClient) -> None:
    account = await auth.user()
    await _reset_code(auth, account.email)

    unknown = await auth.http.post(
        "/api/auth/reset-password",
        json={"email": new_email(), "code": "123456", "new_password": NEW_PASSWORD},
    )
    wrong = await auth.http.post(
        "/api/auth/reset-password",
        json={"email": account.email, "code": "12345x", "new_password": NEW_PASSWORD},
    )

    assert unknown.status_code == wrong.status_code == 400
    assert unknown.json() == wrong.json()


async def test_an_unknown_account_runs_out_of_reset_guesses_exactly_like_a_known_one(
    auth: AuthClient, settings: AuthSettings
) -> None:
    account = await auth.user()
    stranger = new_email()

    async def guesses(email: str) -> list[tuple[int, dict[str, str]]]:
        await auth.http.post("/api/auth/forgot-password", json={"email": email})
        answers = []
        for _ in range(settings.code_max_attempts + 1):
            response = await auth.http.post(
                "/api/auth/reset-password",
                json={"email": email, "code": "000000x", "new_password": NEW_PASSWORD},
            )
            answers.append((response.status_code, response.json()))
        return answers

    known, unknown = await guesses(account.email), await guesses(stranger)
    known_again, unknown_again = await guesses(account.email), await guesses(stranger)

    assert known == unknown
    assert known[-1][1]["code"] == "code_attempts_exhausted"
    assert known_again == unknown_again == known  # a new code: new guesses, for both


async def test_forgot_password_answers_before_it_looks_the_account_up(
    app: FastAPI, auth: AuthClient
) -> None:
    """What only an existing account costs (a code, an email, a commit) happens after the
    answer has left, so the answer's timing cannot tell accounts apart."""
    account = await auth.user()
    sent_when_answered: list[int] = []

    async def on_answer() -> None:
        sent_when_answered.append(len(await auth.outbox_payloads("password_reset", account.email)))

    status = await asgi_post(app, "/api/auth/forgot-password", {"email": account.email}, on_answer)

    assert status == 200
    assert sent_when_answered == [0]
    assert len(await auth.outbox_payloads("password_reset", account.email)) == 1


async def test_change_password_keeps_this_session_and_ends_the_others(auth: AuthClient) -> None:
    account = await auth.user()
    other = await auth.signed_in(account.email)

    response = await auth.http.post(
        "/api/auth/change-password",
        json={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=account.headers,
    )

    assert response.status_code == 200
    body = response.json()
    assert "message" in body
    assert (
        await auth.http.get("/api/auth/me", headers=bearer(body["access_token"]))
    ).status_code == 200
    assert (await auth.http.get("/api/auth/me", headers=other.headers)).status_code == 401
    assert (await auth.http.get("/api/auth/me", headers=account.headers)).status_code == 401
    stale = await auth.http.post(
        "/api/auth/refresh-token", json={"refresh_token": other.refresh_token}
    )
    assert stale.status_code == 401
    assert (await auth.login(account.email, NEW_PASSWORD)).status_code == 200
    actions = (await auth.sql("SELECT action FROM audit_logs")).scalars().all()
    assert "password_changed" in actions


async def test_change_password_with_the_wrong_old_password_is_400_and_audited(
    auth: AuthClient,
) -> None:
    account = await auth.user()

    response = await auth.http.post(
        "/api/auth/change-password",
        json={"old_password": "Not-My-Password-1", "new_password": NEW_PASSWORD},
        headers=account.headers,
    )

    assert response.status_code == 400
    assert response.json()["code"] == "wrong_password"
    actions = (await auth.sql("SELECT action FROM audit_logs")).scalars().all()
    assert "password_change_failed" in actions
    assert (await auth.login(account.email, PASSWORD)).status_code == 200


async def test_change_password_refusals(auth: AuthClient) -> None:
    account = await auth.user()

    same = await auth.http.post(
        "/api/auth/change-password",
        json={"old_password": PASSWORD, "new_password": PASSWORD},
        headers=account.headers,
    )
    weak = await auth.http.post(
        "/api/auth/change-password",
        json={"old_password": PASSWORD, "new_password": "password"},
        headers=account.headers,
    )
    anonymous = await auth.http.post(
        "/api/auth/change-password", json={"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert same.status_code == 400
    assert weak.status_code == 400
    assert anonymous.status_code == 401
