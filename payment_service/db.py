"""Raw statements inside an ORM session's transaction."""

from __future__ import annotations

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under ``session``, for statements in its open transaction.

    A message handler writes through the consumer's session, whose transaction has begun
    with the inbox row and commits it with the handler's writes. A hot handler's statement
    sent on this connection skips the ORM's statement building and result processing and
    still commits (or rolls back) with the inbox row. Refuses a session whose transaction
    has not begun: a statement there would commit on its own.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        raise RuntimeError("the session's transaction has not begun: nothing to join")
    return driver
