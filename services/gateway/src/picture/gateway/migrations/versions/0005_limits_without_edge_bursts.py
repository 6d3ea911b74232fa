"""Limits without edge bursts: the request rate by GCRA, the quotas over rolling windows.

Fixed windows (the minute, the UTC hour and day) let a client spend a whole limit just before
a window ends and another just after: 10 requests in 2 s on a 5-a-minute limit.

- Request rate: ``gateway.request_rates`` keeps one timestamp per user, the theoretical
  arrival time (GCRA). A request at ``now`` is allowed when ``max(tat, now) + step`` is at most
  ``now + window`` (step = window / limit); the tat then advances by one step. A burst of the
  whole limit is allowed from rest, then one request per step: never more than the limit in
  any window. One statement: the insert's ``excluded.tat`` carries ``now + step`` into the
  update, and ``allowed`` records the decision so RETURNING can report it.
- Quotas: ``gateway.reserve`` (this version takes ``p_now``; NULL: now()) counts the charges
  of the last hour and of the last 24 hours instead of the current UTC hour and day; a refusal
  says when enough charges leave the window for the request to fit. The rest is as before:
  the user's row is locked first, ids already charged are skipped, refunded charges do not
  count, one round trip.

The fixed-window objects (``gateway.rate_counters``, the eight-argument ``gateway.reserve``)
stay until no gateway of the previous version runs; a later migration drops them.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

RESERVE = """
CREATE FUNCTION gateway.reserve(
    p_user uuid,
    p_email text,
    p_anonymous boolean,
    p_ids uuid[],
    p_hourly integer,
    p_daily integer,
    p_concurrent integer,
    p_lease_seconds double precision,
    p_now timestamptz
) RETURNS TABLE (outcome text, charged uuid[], limit_value integer, reset_in double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    account gateway.users;
    fresh uuid[];
    wanted integer;
    hourly_used bigint;
    daily_used bigint;
    active bigint;
    at timestamptz := coalesce(p_now, now());
    hour_ago timestamptz := coalesce(p_now, now()) - interval '1 hour';
    day_ago timestamptz := coalesce(p_now, now()) - interval '1 day';
    quota integer;
BEGIN
    SELECT * INTO account FROM gateway.users WHERE user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO gateway.users (user_id, email, is_anonymous)
        VALUES (p_user, p_email, p_anonymous) ON CONFLICT (user_id) DO NOTHING;
        SELECT * INTO account FROM gateway.users WHERE user_id = p_user FOR UPDATE;
    END IF;

    SELECT coalesce(array_agg(g ORDER BY ord), '{}') INTO fresh
    FROM unnest(p_ids) WITH ORDINALITY AS t(g, ord)
    WHERE NOT EXISTS (SELECT 1 FROM gateway.charges c WHERE c.generation_id = t.g);
    wanted := cardinality(fresh);
    IF wanted = 0 THEN
        RETURN QUERY SELECT 'ok'::text, fresh, NULL::integer, NULL::double precision;
        RETURN;
    END IF;

    SELECT
        count(*) FILTER (WHERE refunded_at IS NULL AND charged_at > hour_ago),
        count(*) FILTER (WHERE refunded_at IS NULL AND charged_at > day_ago),
        count(*) FILTER (WHERE released_at IS NULL AND lease_expires_at > at)
    INTO hourly_used, daily_used, active
    FROM gateway.charges
    WHERE user_id = p_user
      AND (charged_at > day_ago OR (released_at IS NULL AND lease_expires_at > at));

    quota := coalesce(account.hourly_limit, p_hourly);
    IF hourly_used + wanted > quota THEN
        -- room comes back when the (used + wanted - quota)-th oldest charge leaves the hour
        RETURN QUERY SELECT 'hourly'::text, NULL::uuid[], quota, coalesce(
            (SELECT extract(epoch FROM c.charged_at + interval '1 hour' - at)::double precision
             FROM gateway.charges c
             WHERE c.user_id = p_user AND c.refunded_at IS NULL AND c.charged_at > hour_ago
             ORDER BY c.charged_at OFFSET hourly_used + wanted - quota - 1 LIMIT 1),
            3600.0);
        RETURN;
    END IF;
    quota := coalesce(account.daily_limit, p_daily);
    IF daily_used + wanted > quota THEN
        RETURN QUERY SELECT 'daily'::text, NULL::uuid[], quota, coalesce(
            (SELECT extract(epoch FROM c.charged_at + interval '1 day' - at)::double precision
             FROM gateway.charges c
             WHERE c.user_id = p_user AND c.refunded_at IS NULL AND c.charged_at > day_ago
             ORDER BY c.charged_at OFFSET daily_used + wanted - quota - 1 LIMIT 1),
            86400.0);
        RETURN;
    END IF;
    -- a batch takes one concurrency slot, single generations one each
    IF active + least(wanted, 1) > coalesce(account.max_concurrent, p_concurrent) THEN
        RETURN QUERY SELECT 'concurrent'::text, NULL::uuid[], coalesce(account.max_concurrent, p_concurrent),
            5.0::double precision;
        RETURN;
    END IF;

    INSERT INTO gateway.charges (generation_id, user_id, charged_at, lease_expires_at)
    SELECT g, p_user, at, at + make_interval(secs => p_lease_seconds) FROM unnest(fresh) AS g;
    RETURN QUERY SELECT 'ok'::text, fresh, NULL::integer, NULL::double precision;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "request_rates",
        sa.Column("user_id", sa.Uuid, primary_key=True),
        # GCRA's theoretical arrival time: the limit is spent up to here
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
        # whether the latest request was allowed (what the one-statement update reports)
        sa.Column("allowed", sa.Boolean, nullable=False),
        schema="gateway",
    )
    op.execute(RESERVE)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION gateway.reserve("
        "uuid, text, boolean, uuid[], integer, integer, integer, double precision, timestamptz)"
    )
    op.drop_table("request_rates", schema="gateway")
