"""gateway.reserve(): a quota reservation in one round trip.

The reservation was five statements in a transaction (lock the user, find ids already charged,
count the windows, insert the charges, plus BEGIN/COMMIT): seven round trips on every submit.
As a function it is one. The logic is the same, and so is exactness: the user's row is locked
first, and every later statement of a VOLATILE PL/pgSQL function takes a fresh snapshot under
READ COMMITTED, so the counts include every reservation committed before the lock was granted.

Returns one row: outcome ('ok', 'hourly', 'daily' or 'concurrent'), the ids charged now (ids
already charged, an Idempotency-Key replay, are skipped), and for a refusal the limit and the
seconds until it resets.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
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
    p_lease_seconds double precision
) RETURNS TABLE (outcome text, charged uuid[], limit_value integer, reset_in double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    account gateway.users;
    fresh uuid[];
    wanted integer;
    hourly_used bigint;
    daily_used bigint;
    active bigint;
    hour_start timestamptz := date_trunc('hour', now(), 'UTC');
    day_start timestamptz := date_trunc('day', now(), 'UTC');
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
        count(*) FILTER (WHERE refunded_at IS NULL AND charged_at >= hour_start),
        count(*) FILTER (WHERE refunded_at IS NULL AND charged_at >= day_start),
        count(*) FILTER (WHERE released_at IS NULL AND lease_expires_at > now())
    INTO hourly_used, daily_used, active
    FROM gateway.charges
    WHERE user_id = p_user
      AND (charged_at >= day_start OR (released_at IS NULL AND lease_expires_at > now()));

    IF hourly_used + wanted > coalesce(account.hourly_limit, p_hourly) THEN
        RETURN QUERY SELECT 'hourly'::text, NULL::uuid[], coalesce(account.hourly_limit, p_hourly),
            extract(epoch FROM hour_start + interval '1 hour' - now())::double precision;
        RETURN;
    END IF;
    IF daily_used + wanted > coalesce(account.daily_limit, p_daily) THEN
        RETURN QUERY SELECT 'daily'::text, NULL::uuid[], coalesce(account.daily_limit, p_daily),
            extract(epoch FROM day_start + interval '1 day' - now())::double precision;
        RETURN;
    END IF;
    -- a batch takes one concurrency slot, single generations one each
    IF active + least(wanted, 1) > coalesce(account.max_concurrent, p_concurrent) THEN
        RETURN QUERY SELECT 'concurrent'::text, NULL::uuid[], coalesce(account.max_concurrent, p_concurrent),
            5.0::double precision;
        RETURN;
    END IF;

    INSERT INTO gateway.charges (generation_id, user_id, lease_expires_at)
    SELECT g, p_user, now() + make_interval(secs => p_lease_seconds) FROM unnest(fresh) AS g;
    RETURN QUERY SELECT 'ok'::text, fresh, NULL::integer, NULL::double precision;
END
$$
"""


def upgrade() -> None:
    op.execute(RESERVE)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION gateway.reserve(uuid, text, boolean, uuid[], integer, integer, integer, double precision)"
    )
