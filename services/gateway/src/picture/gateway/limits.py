"""Per-user limits shared by every gateway replica, kept in PostgreSQL (schema ``gateway``).

No window edges anywhere: a client never gets more than a limit in any span of the limit's
window (gateway migration 0005 explains the algorithms).

- Generation quotas: hourly and daily, over rolling windows (the last hour, the last 24
  hours), counted from ``gateway.charges`` (one row per accepted generation). A refusal says
  when enough charges leave the window. A failed or cancelled generation is refunded exactly
  once: ``refunded_at`` is set by a conditional UPDATE (``WHERE refunded_at IS NULL``), so a
  redelivered event changes nothing.
- Concurrency: the same row is a lease (``lease_expires_at``); released on any terminal state,
  and it expires by itself if that event never comes.
- Exact under concurrency: a reservation locks the user's row (``SELECT ... FOR UPDATE``), so
  the reservations of one user are serialized across replicas; the count and the insert
  follow under that lock. All of it is the SQL function ``gateway.reserve``: one round trip
  per submit.
- Request rate: GCRA, one timestamp per user (``gateway.request_rates``), one statement per
  request. The whole limit may be spent at once, then one request per ``60 / limit`` seconds.
- Time is PostgreSQL's ``now()`` (one clock for every replica); tests pass their own clock.
- Store down: reservations fail closed (503 problem: nothing is accepted without a charge);
  the request-rate limiter fails open (logged): reads keep working while PostgreSQL is away.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.database import POOL_ERRORS, autocommit
from picture.common.problems import ProblemError
from picture.gateway.errors import InvalidField, TransientError, Unavailable
from picture.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

STORE_TIMEOUT_SECONDS = 10.0
STORE_ERRORS: tuple[type[BaseException], ...] = (
    PoolTimeout,  # no connection free within the pool timeout
    OperationalError,
    InterfaceError,
    DBAPIError,
    *POOL_ERRORS,  # the asyncpg pool's; with OSError (ConnectionError) and TimeoutError
)


@dataclass(frozen=True)
class Tier:
    hourly: int
    daily: int
    concurrent: int
    rate_per_minute: int


@dataclass(frozen=True)
class LimitsView:
    can_generate: bool
    limit_reason: str | None
    daily_used: int
    daily_limit: int
    daily_reset_at: datetime
    hourly_used: int
    hourly_limit: int
    hourly_reset_at: datetime
    active_generations: int
    max_concurrent: int
    total_all_time: int


class LimitExceeded(TransientError):
    """429 with Retry-After and the IETF RateLimit / RateLimit-Policy headers."""

    def __init__(self, reason: str, detail: str, *, limit: int, window: int, reset_in: float) -> None:
        retry_after = max(1, math.ceil(reset_in))
        super().__init__(
            429,
            "rate-limited",
            "Too many requests",
            detail,
            headers={
                "Retry-After": str(retry_after),
                "RateLimit-Policy": f'"{reason}";q={limit};w={window}',
                "RateLimit": f'"{reason}";r=0;t={retry_after}',
            },
            limit_reason=reason,
        )


@asynccontextmanager
async def store_guard(what: str) -> AsyncIterator[None]:
    """Map a limiter store failure (or a hang) to a 503 problem, never a 500."""
    try:
        async with asyncio.timeout(STORE_TIMEOUT_SECONDS):
            yield
    except ProblemError:
        raise
    except STORE_ERRORS as exc:
        log.warning("limits store unavailable (%s): %s", what, exc)
        raise Unavailable("the limits store is unavailable; retry shortly") from exc


_COUNTS = text(
    """
    WITH t AS (SELECT coalesce(CAST(:now AS timestamptz), now()) AS now)
    SELECT
      count(*) FILTER (WHERE refunded_at IS NULL AND charged_at > t.now - interval '1 hour') AS hourly,
      count(*) FILTER (WHERE refunded_at IS NULL AND charged_at > t.now - interval '1 day') AS daily,
      count(*) FILTER (WHERE released_at IS NULL AND lease_expires_at > t.now) AS active,
      -- when the oldest charge still counted leaves its window (now, when none counts)
      coalesce(min(charged_at) FILTER (WHERE refunded_at IS NULL AND charged_at > t.now - interval '1 hour'),
               t.now - interval '1 hour') + interval '1 hour' AS hourly_reset_at,
      coalesce(min(charged_at) FILTER (WHERE refunded_at IS NULL AND charged_at > t.now - interval '1 day'),
               t.now - interval '1 day') + interval '1 day' AS daily_reset_at
    FROM t LEFT JOIN gateway.charges c
      ON c.user_id = :u
     AND (c.charged_at > t.now - interval '1 day' OR (c.released_at IS NULL AND c.lease_expires_at > t.now))
    GROUP BY t.now
    """
)


# One round trip: lock the user, skip ids already charged, count, charge (migration 0005).
RESERVE_CALL = (
    "gateway.reserve(:u, :e, :a, CAST(:ids AS uuid[]), :hourly, :daily, :concurrent, :lease, "
    "CAST(:now AS timestamptz))"
)
_RESERVE = text(f"SELECT outcome, charged, limit_value, reset_in FROM {RESERVE_CALL}")  # noqa: S608

# GCRA in one statement (migration 0005). excluded.tat is now + step: the update reads the
# clock from it. ``ahead``: how far the stored tat is past now, in seconds.
# One statement per request, on the asyncpg pool (positional parameters: now or NULL for the
# database's clock, user, step and window in seconds).
_HIT = """
    WITH t AS (SELECT coalesce($1::timestamptz, now()) AS now)
    INSERT INTO gateway.request_rates AS r (user_id, tat, allowed)
    SELECT $2::uuid, t.now + make_interval(secs => $3::float8), true FROM t
    ON CONFLICT (user_id) DO UPDATE SET
      allowed = greatest(r.tat + make_interval(secs => $3::float8), excluded.tat)
                <= excluded.tat + make_interval(secs => $4::float8 - $3::float8),
      tat = CASE
        WHEN greatest(r.tat + make_interval(secs => $3::float8), excluded.tat)
             <= excluded.tat + make_interval(secs => $4::float8 - $3::float8)
        THEN greatest(r.tat + make_interval(secs => $3::float8), excluded.tat)
        ELSE r.tat
      END
    RETURNING allowed, extract(epoch FROM tat - (SELECT now FROM t)) AS ahead
"""

RATE_WINDOW_SECONDS = 60.0


def database_time() -> datetime | None:
    """The limiter's clock in production: None, so PostgreSQL's now() decides (one clock for
    every replica). Tests pass a clock of their own to place requests in time."""
    return None


class Limiter:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: GatewaySettings,
        *,
        pool: asyncpg.Pool,
        clock: Callable[[], datetime | None] = database_time,
    ) -> None:
        self.engine = engine
        self.pool = pool  # the statement of every request (and the read model's)
        # single-statement writes: no BEGIN/COMMIT round trips (same pool)
        self._autocommit = autocommit(engine)
        self.settings = settings
        self.clock = clock
        self._user_cache: OrderedDict[uuid.UUID, tuple[float, dict[str, object]]] = OrderedDict()

    # ------------------------------------------------------------------ tiers and users

    def tier(self, is_anonymous: bool, overrides: dict[str, object] | None = None) -> Tier:
        s = self.settings
        base = (
            Tier(
                s.anonymous_hourly_limit,
                s.anonymous_daily_limit,
                s.anonymous_max_concurrent,
                s.anonymous_rate_limit_per_minute,
            )
            if is_anonymous
            else Tier(s.hourly_limit, s.daily_limit, s.max_concurrent, s.rate_limit_per_minute)
        )
        o = overrides or {}

        def pick(name: str, default: int) -> int:
            value = o.get(name)
            return value if isinstance(value, int) else default

        return Tier(
            hourly=pick("hourly_limit", base.hourly),
            daily=pick("daily_limit", base.daily),
            concurrent=pick("max_concurrent", base.concurrent),
            rate_per_minute=pick("rate_limit_per_minute", base.rate_per_minute),
        )

    async def see_user(self, user_id: uuid.UUID, email: str | None, is_anonymous: bool) -> bool:
        """Record the user (first sight: True). Cached per process: one statement per user."""
        if self.cached_user(user_id) is not None:
            return False
        async with store_guard("users"), self.engine.begin() as conn:
            created = (
                await conn.execute(
                    text(
                        "INSERT INTO gateway.users (user_id, email, is_anonymous) VALUES (:u, :e, :a) "
                        "ON CONFLICT (user_id) DO NOTHING RETURNING user_id"
                    ),
                    {"u": user_id, "e": email, "a": is_anonymous},
                )
            ).first() is not None
            row = (
                (await conn.execute(text("SELECT * FROM gateway.users WHERE user_id = :u"), {"u": user_id}))
                .mappings()
                .one()
            )
        self._remember(user_id, dict(row))
        return created

    def _remember(self, user_id: uuid.UUID, row: dict[str, object]) -> None:
        self._user_cache[user_id] = (asyncio.get_running_loop().time() + 30.0, row)
        self._user_cache.move_to_end(user_id)
        while len(self._user_cache) > 10_000:
            self._user_cache.popitem(last=False)

    def cached_user(self, user_id: uuid.UUID) -> dict[str, object] | None:
        entry = self._user_cache.get(user_id)
        if entry is None or entry[0] < asyncio.get_running_loop().time():
            self._user_cache.pop(user_id, None)
            return None
        return entry[1]

    async def is_admin(self, user_id: uuid.UUID) -> bool:
        if user_id in self.settings.admin_ids:
            return True
        async with store_guard("users"), self.engine.connect() as conn:
            value = (
                await conn.execute(
                    text("SELECT is_admin FROM gateway.users WHERE user_id = :u"), {"u": user_id}
                )
            ).scalar_one_or_none()
        return bool(value)

    # ------------------------------------------------------------------ request rate

    async def hit(self, user_id: uuid.UUID, is_anonymous: bool) -> None:
        """Count one request; 429 over the per-minute limit. Fails open if the store is down."""
        tier = self.tier(is_anonymous, self.cached_user(user_id))
        step = RATE_WINDOW_SECONDS / tier.rate_per_minute
        try:
            async with asyncio.timeout(STORE_TIMEOUT_SECONDS):
                row = await self.pool.fetchrow(_HIT, self.clock(), user_id, step, RATE_WINDOW_SECONDS)
        except STORE_ERRORS as exc:
            log.warning("request rate limiter unavailable, letting the request through: %s", exc)
            return
        assert row is not None  # INSERT ... ON CONFLICT DO UPDATE ... RETURNING: one row
        if not row["allowed"]:
            # refused: the tat did not move; this request fits once max(tat, now) + step - window has come
            retry_in = max(float(row["ahead"]), 0.0) + step - RATE_WINDOW_SECONDS
            raise LimitExceeded(
                "requests",
                f"at most {tier.rate_per_minute} requests a minute",
                limit=tier.rate_per_minute,
                window=int(RATE_WINDOW_SECONDS),
                reset_in=retry_in,
            )

    async def sweep(self) -> None:
        """Forget request rates at rest (called periodically): a tat in the past means the
        whole limit is available, exactly as with no row."""
        async with self._autocommit.connect() as conn:
            await conn.execute(text("DELETE FROM gateway.request_rates WHERE tat < now()"))

    # ------------------------------------------------------------------ generation quotas

    async def reserve(
        self,
        user_id: uuid.UUID,
        email: str | None,
        is_anonymous: bool,
        generation_ids: Sequence[uuid.UUID],
    ) -> list[uuid.UUID]:
        """Charge the quota and take a concurrency lease for each generation, all or nothing.

        Ids already charged (an Idempotency-Key replay) are skipped; returns the ids charged
        now. A batch (several ids) needs a free concurrency slot, a single generation needs
        one slot per id; both need room in the hourly and daily quota for every item.
        """
        async with store_guard("reserve"), self._autocommit.connect() as conn:
            result = (
                await conn.execute(_RESERVE, self.reservation(user_id, email, is_anonymous, generation_ids))
            ).one()
        return self.charged_or_raise(result)

    def reservation(
        self, user_id: uuid.UUID, email: str | None, is_anonymous: bool, generation_ids: Sequence[uuid.UUID]
    ) -> dict[str, object]:
        """The parameters of ``gateway.reserve`` for these generations (422 over the batch size)."""
        if len(generation_ids) > self.settings.max_batch_size:
            raise InvalidField("items", f"at most {self.settings.max_batch_size} generations at once")
        base = self.tier(is_anonymous)  # the user's own overrides are applied in the function
        return {
            "u": user_id,
            "e": email,
            "a": is_anonymous,
            "ids": list(generation_ids),
            "hourly": base.hourly,
            "daily": base.daily,
            "concurrent": base.concurrent,
            "lease": self.settings.lease_seconds,
            "now": self.clock(),
        }

    @staticmethod
    def charged_or_raise(result: Any) -> list[uuid.UUID]:
        """The ids ``gateway.reserve`` charged, or the 429 of the limit it reached."""
        if result.outcome == "ok":
            return list(result.charged)
        limit, reset_in = int(result.limit_value), float(result.reset_in)
        if result.outcome == "hourly":
            raise LimitExceeded(
                "hourly",
                f"hourly generation limit reached ({limit} an hour)",
                limit=limit,
                window=3600,
                reset_in=reset_in,
            )
        if result.outcome == "daily":
            raise LimitExceeded(
                "daily",
                f"daily generation limit reached ({limit} a day)",
                limit=limit,
                window=86400,
                reset_in=reset_in,
            )
        raise LimitExceeded(
            "concurrent",
            f"at most {limit} generations at once; wait for one to finish",
            limit=limit,
            window=60,
            reset_in=reset_in,
        )

    async def undo(self, generation_ids: Sequence[uuid.UUID]) -> None:
        """The orchestrator refused or did not answer: the charge never happened."""
        if not generation_ids:
            return
        async with store_guard("undo"), self.engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM gateway.charges WHERE generation_id = ANY(:ids)"),
                {"ids": list(generation_ids)},
            )

    async def settle(self, generation_id: uuid.UUID, refund: bool) -> bool:
        """A terminal state: release the lease; refund a failed/cancelled one exactly once.
        Returns True when this call refunded."""
        async with self.engine.begin() as conn:
            if refund:
                refunded = (
                    await conn.execute(
                        text(
                            "UPDATE gateway.charges SET refunded_at = now(), "
                            "released_at = COALESCE(released_at, now()) "
                            "WHERE generation_id = :g AND refunded_at IS NULL RETURNING generation_id"
                        ),
                        {"g": generation_id},
                    )
                ).first()
                return refunded is not None
            await conn.execute(
                text(
                    "UPDATE gateway.charges SET released_at = now() "
                    "WHERE generation_id = :g AND released_at IS NULL"
                ),
                {"g": generation_id},
            )
        return False

    async def view(self, user_id: uuid.UUID, email: str | None, is_anonymous: bool) -> LimitsView:
        user = self.cached_user(user_id)
        if user is None:
            await self.see_user(user_id, email, is_anonymous)
            user = self.cached_user(user_id)
        tier = self.tier(is_anonymous, user)
        # a read: no lock, no transaction (the figures are a snapshot either way)
        async with store_guard("limits"), self._autocommit.connect() as conn:
            counts = (await conn.execute(_COUNTS, {"u": user_id, "now": self.clock()})).one()
            total = (
                await conn.execute(
                    text("SELECT count(*) FROM gateway.charges WHERE user_id = :u AND refunded_at IS NULL"),
                    {"u": user_id},
                )
            ).scalar_one()
        reason = None
        if counts.daily >= tier.daily:
            reason = "daily"
        elif counts.hourly >= tier.hourly:
            reason = "hourly"
        elif counts.active >= tier.concurrent:
            reason = "concurrent"
        return LimitsView(
            can_generate=reason is None,
            limit_reason=reason,
            daily_used=counts.daily,
            daily_limit=tier.daily,
            daily_reset_at=counts.daily_reset_at,
            hourly_used=counts.hourly,
            hourly_limit=tier.hourly,
            hourly_reset_at=counts.hourly_reset_at,
            active_generations=counts.active,
            max_concurrent=tier.concurrent,
            total_all_time=int(total),
        )
