"""Alembic, driven from code: one migration history per service, one database each.

``python -m ticketing_common.migrations <service>`` upgrades that service's database to
head. A PostgreSQL advisory lock makes concurrent upgrades (several replicas or launchers
starting at once) wait for each other instead of racing.
"""

from __future__ import annotations

import asyncio
import importlib
import sys

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from ticketing_common.settings import ServiceSettings

_MIGRATION_LOCK_ID = 0x7E1C_0001


def settings_for(service: str) -> ServiceSettings:
    module = importlib.import_module(f"{service}.settings")
    settings: ServiceSettings = module.get_settings()
    return settings


def alembic_config(service: str, settings: ServiceSettings | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{service}:migrations")
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["settings"] = settings or settings_for(service)
    return config


def upgrade(service: str, settings: ServiceSettings | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, settings), revision)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's ``migrations/env.py`` (online mode, async engine)."""
    config = context.config
    settings: ServiceSettings = config.attributes["settings"]

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
        )
        with context.begin_transaction():
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(settings.database_url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(do_run)
        finally:
            await engine.dispose()

    asyncio.run(run_async())


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m ticketing_common.migrations <service> [<service> ...]")
        return 2
    for service in argv:
        upgrade(service)
        print(f"{service}: migrated to head")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
