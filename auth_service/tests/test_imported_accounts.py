"""Accounts imported from the Go original's users table sign in with their passwords.

The original stored bcrypt hashes (Go's ``bcrypt.GenerateFromPassword``: ``$2a$``, cost 10).
They verify as they are, and the first successful login replaces them with argon2id.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import bcrypt

from auth_service.settings import AuthSettings
from auth_service.tests.support import AuthClient, new_email

IMPORT_SQL = Path(__file__).parents[1] / "import_original_users.sql"
#: the staging table docs/MIGRATING.md has the original's rows copied into
ORIGINAL_USERS_TABLE = """
CREATE TABLE original_users (
    id bigint PRIMARY KEY, created_at timestamptz, updated_at timestamptz, email text,
    password text, role text, is_verified boolean, approval_status text, document_path text
)
"""

ORIGINAL_PASSWORD = "secret1"  # the original asked for no length or digits


async def _imported(auth: AuthClient, password: str, *, role: str = "user") -> str:
    """An account as the migration inserts it, with a bcrypt hash as Go makes them."""
    email = new_email("imported")
    go_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10, prefix=b"2a")).decode()
    await auth.sql(
        "INSERT INTO users (email, password_hash, role, status, is_verified) "
        "VALUES (:email, :hash, :role, 'active', true)",
        email=email,
        hash=go_hash,
        role=role,
    )
    return email


async def _stored_hash(auth: AuthClient, email: str) -> str:
    result = await auth.sql("SELECT password_hash FROM users WHERE email = :e", e=email)
    stored: str = result.scalar_one()
    return stored


async def test_original_bcrypt_hash_logs_in_and_becomes_argon2id(auth: AuthClient) -> None:
    email = await _imported(auth, ORIGINAL_PASSWORD)
    assert (await _stored_hash(auth, email)).startswith("$2a$10$")

    first = await auth.login(email, ORIGINAL_PASSWORD)

    assert first.status_code == 200, first.text
    rehashed = await _stored_hash(auth, email)
    assert rehashed.startswith("$argon2id$")
    assert (await auth.login(email, ORIGINAL_PASSWORD)).status_code == 200
    assert await _stored_hash(auth, email) == rehashed  # upgraded once


async def test_wrong_password_on_an_original_hash_is_401_and_keeps_the_hash(
    auth: AuthClient,
) -> None:
    email = await _imported(auth, ORIGINAL_PASSWORD)
    before = await _stored_hash(auth, email)

    response = await auth.login(email, "secret2")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid credentials"
    assert await _stored_hash(auth, email) == before


async def test_a_password_longer_than_bcrypts_72_bytes_signs_in_as_it_did_in_go(
    auth: AuthClient,
) -> None:
    """Go's bcrypt read only the first 72 bytes; the whole password still signs in."""
    password = "p4ss-" + "x" * 80
    email = new_email("imported")
    go_hash = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=4, prefix=b"2a"))
    await auth.sql(
        "INSERT INTO users (email, password_hash, role, status, is_verified) "
        "VALUES (:email, :hash, 'user', 'active', true)",
        email=email,
        hash=go_hash.decode(),
    )

    response = await auth.login(email, password)

    assert response.status_code == 200, response.text


async def test_an_imported_organizer_reapplies_with_the_original_password(
    auth: AuthClient,
) -> None:
    email = await _imported(auth, ORIGINAL_PASSWORD, role="organizer")
    await auth.sql("UPDATE users SET status = 'rejected' WHERE email = :e", e=email)

    reapplied = await auth.http.post(
        "/api/auth/reapply", json={"email": email, "password": ORIGINAL_PASSWORD}
    )

    assert reapplied.status_code == 200, reapplied.text


async def test_a_hash_of_no_known_kind_refuses_the_login_without_a_500(auth: AuthClient) -> None:
    email = await _imported(auth, ORIGINAL_PASSWORD)
    await auth.sql("UPDATE users SET password_hash = 'md5:0123' WHERE email = :e", e=email)

    response = await auth.login(email, ORIGINAL_PASSWORD)

    assert response.status_code == 401


async def test_the_documented_import_keeps_ids_states_and_passwords(
    auth: AuthClient, settings: AuthSettings
) -> None:
    def go_hash(password: str) -> str:
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4, prefix=b"2a")).decode()

    rows = [
        (101, "Buyer@Example.com", "user", True, "approved", ""),
        (102, "fresh@example.com", "user", False, "", ""),
        (103, "waiting@example.com", "organizer", True, "pending", "uploads/103.pdf"),
        (104, "turned-down@example.com", "organizer", True, "rejected", "uploads/104.pdf"),
    ]
    connection = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    try:
        await connection.execute(ORIGINAL_USERS_TABLE)
        await connection.executemany(
            "INSERT INTO original_users VALUES ($1, now(), now(), $2, $3, $4, $5, $6, $7)",
            [(i, email, go_hash(f"pw-{i}"), role, v, s, d) for i, email, role, v, s, d in rows],
        )
        await connection.execute(IMPORT_SQL.read_text())
        await connection.execute("DROP TABLE original_users")
    finally:
        await connection.close()

    answers = {i: await auth.login(email.lower(), f"pw-{i}") for i, email, *_ in rows}
    registered = await auth.register()

    assert answers[101].status_code == 200, answers[101].text
    assert [answers[i].json()["error"] for i in (102, 103, 104)] == [
        "email not verified",
        "account pending approval",
        "account rejected",
    ]
    assert registered.json()["user"]["id"] == 105
    admin = await auth.admin()
    buyer = await auth.http.get("/api/auth/users/101", headers=admin.headers)
    assert buyer.json() == {**buyer.json(), "email": "buyer@example.com", "role": "user"}
