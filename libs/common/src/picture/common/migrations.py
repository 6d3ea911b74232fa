"""Alembic, run as its own step (``picture-<service> migrate``), never at import or start.

Each service keeps its revisions in ``picture/<service>/migrations`` and its version table in
its own schema, so services migrate independently. A service's ``env.py`` is two lines::

    from picture.common.migrations import run_env
    from picture.orchestrator.tables import metadata
    run_env(metadata)
"""

from __future__ import annotations

import asyncio

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


def upgrade(script_location: str, database_url: str, revision: str = "head") -> None:
    """Upgrade one service's schema. ``script_location`` like "picture.catalog:migrations"."""
    config = Config()
    config.set_main_option("script_location", script_location)
    config.set_main_option("sqlalchemy.url", database_url)
    command.upgrade(config, revision)


def run_env(metadata: MetaData) -> None:
    """Body of a service's alembic env.py: online migrations over asyncpg."""
    schema = metadata.schema
    assert schema, "a service's MetaData must name its schema"
    url = context.config.get_main_option("sqlalchemy.url")
    assert url

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=False,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                await conn.commit()
                await conn.run_sync(run)
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(main())
