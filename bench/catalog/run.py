"""Catalog hot queries at scale: 1,000,000 images of 1,000 users, 50 tags.

Starts a bench-only PostgreSQL (picture.devstack.infra) under var/bench/catalog-pg on a free
port, migrates the catalog schema, generates the data with INSERT ... SELECT generate_series
(once; kept for reruns), then calls the catalog's own query functions
(picture.catalog.gallery) directly and reports p50/p95/p99 per query, plus
EXPLAIN (ANALYZE, BUFFERS) of each query's SQL as the catalog sends it.

    .venv/bin/python bench/catalog/run.py [--iterations 300] [--explain-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from picture.catalog import gallery
from picture.common import contracts as c
from picture.common.migrations import upgrade
from picture.devstack.infra import PostgresServer
from picture.devstack.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var" / "bench" / "catalog-pg"
USERS = 1_000
IMAGES = 1_000_000
TAGS = 50
TAGS_PER_IMAGE = 3
WORDS = [
    "lighthouse",
    "dusk",
    "castle",
    "forest",
    "harbour",
    "mountain",
    "river",
    "city",
    "street",
    "portrait",
    "cat",
    "dog",
    "dragon",
    "robot",
    "astronaut",
    "garden",
    "ocean",
    "desert",
    "winter",
    "summer",
    "autumn",
    "spring",
    "neon",
    "cyberpunk",
    "watercolor",
    "oil",
    "painting",
    "sketch",
    "photo",
    "cinematic",
    "golden",
    "hour",
    "fog",
    "rain",
    "snow",
    "sunset",
    "sunrise",
    "night",
    "stars",
    "galaxy",
    "nebula",
    "temple",
    "bridge",
    "train",
    "station",
    "market",
    "cafe",
    "library",
    "window",
    "reflection",
    "mirror",
    "glass",
    "crystal",
    "flower",
    "rose",
    "tulip",
    "forest",
    "spirit",
    "knight",
    "wizard",
    "witch",
    "ship",
    "pirate",
    "island",
    "volcano",
    "canyon",
    "waterfall",
    "meadow",
    "village",
    "tower",
    "skyline",
    "rooftop",
    "alley",
    "lantern",
    "candle",
    "fire",
    "smoke",
    "storm",
    "lightning",
    "aurora",
    "moon",
    "planet",
    "comet",
    "ruins",
]

SEED_SQL = [
    """INSERT INTO catalog.tags (name, color)
        SELECT 'tag' || g, '#' || lpad(to_hex((g * 5003) % 16777215), 6, '0')
        FROM generate_series(1, :tags) g ON CONFLICT DO NOTHING""",
    """INSERT INTO catalog.profiles (id, email, username, avatar_url)
        SELECT uuid_generate_v5_like, 'user' || g || '@example.com', 'user' || g,
               'https://avatars.example/' || g || '.png'
        FROM (SELECT g, md5('user' || g)::uuid AS uuid_generate_v5_like
              FROM generate_series(1, :users) g) s""",
    """INSERT INTO catalog.images (id, user_id, filename, content_key, thumbnail_key, file_size, width,
            height, format, sha256, prompt, model, is_public, is_favorite, download_count, like_count,
            archived_at, created_at)
        SELECT md5('image' || g)::uuid, md5('user' || (1 + g % :users))::uuid, g || '.webp',
               'bench/' || g || '.webp', 'bench/' || g || '.thumb.webp', 200000, 1024, 1024, 'webp',
               md5(g::text) || md5(g::text),
               (SELECT string_agg(w[1 + (abs(hashint4(g * 8 + k)::bigint) % array_length(w, 1))], ' ')
                  FROM generate_series(1, 8) k),
               (ARRAY['flux-schnell','flux-dev','sdxl','seedream-3'])[1 + g % 4],
               g % 10 < 3, g % 7 = 0,
               (abs(hashint4(g)::bigint) % 1000) * (abs(hashint4(g + 1)::bigint) % 1000) / 10000,
               (abs(hashint4(g + 2)::bigint) % 100) * (abs(hashint4(g + 3)::bigint) % 100) / 100,
               CASE WHEN g % 20 = 0 THEN now() END,
               now() - make_interval(secs => (abs(hashint4(g + 4)::bigint) % (365 * 86400)))
        FROM generate_series(1, :images) g,
             (SELECT string_to_array(:words, ' ') AS w) words""",
    """INSERT INTO catalog.image_tags (image_id, tag_id, user_id)
        SELECT md5('image' || g)::uuid, 1 + (abs(hashint4(g * 31 + k)::bigint) % :tags),
               md5('user' || (1 + g % :users))::uuid
        FROM generate_series(1, :images) g, generate_series(1, :per_image) k
        ON CONFLICT DO NOTHING""",
]


async def secondary_indexes(conn: Any) -> list[tuple[str, str]]:
    rows = await conn.execute(
        text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'catalog'"
            " AND i.tablename IN ('images', 'image_tags') AND i.indexname NOT IN"
            " (SELECT conname FROM pg_constraint)"
        )
    )
    return [(row[0], row[1]) for row in rows]


async def seed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM catalog.images"))).scalar_one()
    if count >= IMAGES:
        print(f"data present: {count} images")
        return
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        await conn.execute(text("SET LOCAL synchronous_commit = off"))
        indexes = await secondary_indexes(conn)
        for name, _ in indexes:  # build them once after the load, not row by row
            await conn.execute(text(f"DROP INDEX catalog.{name}"))
        for sql in SEED_SQL:
            step = time.perf_counter()
            params = {
                "words": " ".join(WORDS),
                "tags": TAGS,
                "users": USERS,
                "images": IMAGES,
                "per_image": TAGS_PER_IMAGE,
            }
            await conn.execute(text(sql), {k: v for k, v in params.items() if f":{k}" in sql})
            print(f"  {sql.split()[2]}: {time.perf_counter() - step:.1f} s")
        for _, definition in indexes:
            step = time.perf_counter()
            await conn.execute(text(definition))
            print(f"  {definition[:90]}...: {time.perf_counter() - step:.1f} s")
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE catalog.images"))
        await conn.execute(text("VACUUM ANALYZE catalog.image_tags"))
        await conn.execute(text("VACUUM ANALYZE catalog.tags"))
        await conn.execute(text("VACUUM ANALYZE catalog.profiles"))
    print(f"seeded in {time.perf_counter() - started:.0f} s")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(name: str, iterations: int, call: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    for i in range(20):  # warm-up: plans, caches
        await call(i)
    samples, cpu = [], []
    for i in range(iterations):
        started, cpu_started = time.perf_counter(), time.process_time()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    stats = {
        "p50": statistics.median(samples),
        "p95": percentile(samples, 95),
        "p99": percentile(samples, 99),
        "max": max(samples),
        "client cpu p50": statistics.median(cpu),  # this process's own work per call (Python)
    }
    print(f"{name:48s} " + "  ".join(f"{k} {v:6.2f} ms" for k, v in stats.items()))
    return stats


class Capture:
    """Records the SQL statements (and parameters) the catalog sends, to EXPLAIN them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.on = False
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if self.on:
            self.statements.append((statement, parameters))


async def explain(engine: AsyncEngine, capture: Capture, call: Callable[[], Awaitable[Any]]) -> list[str]:
    capture.statements.clear()
    capture.on = True
    await call()
    capture.on = False
    plans = []
    for statement, parameters in list(capture.statements):
        if not statement.lstrip().upper().startswith("SELECT"):
            continue
        async with engine.connect() as conn:
            rows = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plans.append(statement + "\n\n" + "\n".join(row[0] for row in rows))
    return plans


async def server_side(
    engine: AsyncEngine, capture: Capture, name: str, iterations: int, call: Callable[[int], Awaitable[Any]]
) -> None:
    samples = []
    for i in range(iterations):
        capture.statements.clear()
        capture.on = True
        await call(i)
        capture.on = False
        total = 0.0
        async with engine.connect() as conn:
            for statement, parameters in list(capture.statements):
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                result = await conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
                raw = result.scalar_one()
                plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
                total += plan["Planning Time"] + plan["Execution Time"]
        samples.append(total)
    stats = {
        "p50": statistics.median(samples),
        "p95": percentile(samples, 95),
        "p99": percentile(samples, 99),
    }
    print(f"{name:48s} " + "  ".join(f"{k} {v:6.2f} ms" for k, v in stats.items()))


async def main(iterations: int, explain_out: Path | None) -> None:
    VAR.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(VAR / "data", free_port(), VAR / "postgres.log", database="bench", fsync=False)
    server.start()
    try:
        await asyncio.to_thread(upgrade, "picture.catalog:migrations", server.url)
        engine = create_async_engine(server.url, pool_size=2)
        await seed(engine)
        async with engine.connect() as conn:  # index-only scans want a current visibility map
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE catalog.images"))
        rng = random.Random(7)
        users = [
            uuid.UUID(bytes=bytes.fromhex(__import__("hashlib").md5(f"user{g}".encode()).hexdigest()))
            for g in range(1, USERS + 1)
        ]
        tag_pairs = [tuple(rng.sample([f"tag{t}" for t in range(1, TAGS + 1)], 2)) for _ in range(64)]
        words = [w for w in WORDS if len(w) > 3]

        def tagged(i: int) -> c.ListImagesRequest:
            return c.ListImagesRequest(user_id=users[(i * 7919) % USERS], tags=tag_pairs[i % len(tag_pairs)])

        popular_first = await gallery.explore(engine, c.ExploreRequest(sort="popular"))
        deep_cursor = popular_first.next_cursor

        def search(i: int) -> c.ExploreRequest:
            return c.ExploreRequest(q=f"{words[i % len(words)]} {words[(i * 3) % len(words)]}")

        cases: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
            ("gallery: own images with two tags (AND)", lambda i: gallery.list_images(engine, tagged(i))),
            (
                "gallery: own images, first page",
                lambda i: gallery.list_images(engine, c.ListImagesRequest(user_id=users[i % USERS])),
            ),
            (
                "explore: popular, first page",
                lambda i: gallery.explore(engine, c.ExploreRequest(sort="popular")),
            ),
            (
                "explore: popular, second page (cursor)",
                lambda i: gallery.explore(engine, c.ExploreRequest(sort="popular", cursor=deep_cursor)),
            ),
            ("explore: recent, first page", lambda i: gallery.explore(engine, c.ExploreRequest())),
            ("explore: prompt search (two words), recent", lambda i: gallery.explore(engine, search(i))),
            (
                "explore: prompt search (one word), popular",
                lambda i: gallery.explore(engine, c.ExploreRequest(sort="popular", q=words[i % len(words)])),
            ),
        ]
        print(
            f"\n{IMAGES:,} images, {USERS:,} users, {TAGS} tags; "
            f"{iterations} calls each after 20 warm-up calls"
        )
        for name, call in cases:
            await measure(name, iterations, call)

        # The same calls' SQL, timed inside PostgreSQL (EXPLAIN ANALYZE's execution + planning time):
        # what the database spends, without this client's Python and the shared CPU's queueing.
        capture = Capture(engine)
        print(f"\nserver-side (planning + execution of every statement of one call), {iterations} runs each")
        for name, call in cases:
            await server_side(engine, capture, name, iterations, call)

        if explain_out is not None:
            sections = []
            for name, call in cases:
                for plan in await explain(engine, capture, lambda call=call: call(1)):
                    sections.append(f"-- {name}\n{plan}\n")
            await asyncio.to_thread(explain_out.write_text, "\n".join(sections))
            print(f"\nplans: {explain_out}")
        await engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--explain-out", type=Path, default=ROOT / "var" / "bench" / "catalog-plans.txt")
    args = parser.parse_args()
    asyncio.run(main(args.iterations, args.explain_out))
