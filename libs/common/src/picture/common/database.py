"""Async SQLAlchemy (asyncpg) engines, and plain asyncpg pools for the hottest statements.
Every service owns one PostgreSQL schema.

Tables declare their schema in their ``MetaData(schema=...)``; no service names another's.
Engines and pools are built in a service's lifespan, never at import.

A statement run on every request (a rate-limit hit, a primary-key read) costs several times
more CPU through SQLAlchemy's connection and result layers than the database's own work;
those few statements run on an asyncpg pool (:func:`build_pool`), everything else on the
engine (docs/adr/0017).
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg
from sqlalchemy import MetaData, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def schema_metadata(schema: str) -> MetaData:
    """The MetaData of one service's schema, with stable constraint names for migrations."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


# A pooled connection idle longer than this is pinged before use (PostgreSQL restarted, a
# proxy dropped it). Busy connections are not: ``pool_pre_ping`` added three round trips
# (BEGIN, SELECT 1, ROLLBACK) to every checkout. A connection that breaks anyway
# fails one statement; SQLAlchemy then invalidates the whole pool, so every stale connection
# is replaced, and callers treat the error as transient (redelivery, 503 + retry).
IDLE_PING_SECONDS = 10.0


def build_engine(database_url: str, *, pool_size: int = 10, application_name: str = "") -> AsyncEngine:
    """An engine whose pool holds ``pool_size`` connections and does not churn.

    No overflow: overflow connections are closed on return, so a burst above the pool size
    paid a TCP + TLS-negotiation + authentication handshake per transaction; callers beyond
    the pool wait for a connection instead (``pool_timeout``).
    """
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=10,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": application_name}} if application_name else {},
    )
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < IDLE_PING_SECONDS:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure: this connection is gone
            raise DisconnectionError(str(exc)) from exc
        if not alive:
            raise DisconnectionError("ping failed")


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, without BEGIN/COMMIT: for single-statement reads and writes.

    A plain ``engine.connect()`` begins a transaction on its first statement and rolls it
    back on close: a one-query read costs three round trips; this costs one.
    """
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def session_factory(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> bool:
    """Readiness: can we run a query right now?"""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


# A pool connection that failed (PostgreSQL down or restarted, the network): transient.
POOL_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    OSError,
    TimeoutError,
)


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style DSN asyncpg takes, from a SQLAlchemy URL (``postgresql+asyncpg://``)."""
    scheme, sep, rest = database_url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset between statements: the pool runs single statements that change no
    session state. (asyncpg's default reset is a round trip of four statements per release,
    more than the statement itself; an open transaction is still rolled back.)"""


async def build_pool(database_url: str, *, max_size: int = 10, application_name: str = "") -> asyncpg.Pool:
    """An asyncpg pool for single statements on the hot paths (autocommit, prepared and
    cached per connection by asyncpg). No connection is opened before the first statement (a
    service starts while its database is down, and answers 503 until it is back); connections
    idle for a minute are closed."""
    return await asyncpg.create_pool(
        asyncpg_dsn(database_url),
        min_size=0,
        max_size=max_size,
        max_inactive_connection_lifetime=60.0,
        command_timeout=10.0,
        reset=_keep_session,
        server_settings={"application_name": application_name} if application_name else None,
    )
