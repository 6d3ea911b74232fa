"""Scheduling fairness, then nothing lost and nothing doubled while services, NATS and
PostgreSQL crash under 50 generations.

Its own stack (module scope; the gateway admits many generations per user, so the
orchestrator's scheduler is what limits them to 3 in flight per user). SIGKILL of the
orchestrator, the adapter and media at several points with work in flight, a NATS restart,
an immediate PostgreSQL stop and restart. Then every generation is terminal, no generation
has two catalog images, a completed one has exactly its two media objects, the simulator
created at most one prediction per attempt and the cost is recorded once. The counts are
printed. And a source slower than the sweeper's "downloading" limit is never downloaded twice
at once (the simulator's file URLs go through a proxy of the test that can slow them).
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from picture.common import contracts as c
from picture.common.messaging import Bus
from picture.devstack.ports import free_port
from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import Ports, Stack
from picture.devstack.waiting import eventually
from tests.integration.conftest import running_stack
from tests.integration.faults import (
    DOWNLOAD_BUDGET,
    GATEWAY,
    PER_USER,
    SHORT,
    TERMINAL,
    all_terminal,
    client_for,
    failed_by_a_fault,
    readable,
    simulator_predictions,
    submit,
)

TOTAL = 50
USERS = 5


@dataclass
class SlowDelivery:
    """A proxy to the simulator's file downloads that can hold each for ``delay`` seconds
    (until the client gives up), counting the downloads of each file in flight."""

    upstream: str = ""
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: Counter[str] = field(default_factory=Counter)
    most_in_flight: Counter[str] = field(default_factory=Counter)
    downloads: Counter[str] = field(default_factory=Counter)

    def serve(self, port: int) -> ThreadingHTTPServer:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path
                with proxy.lock:
                    proxy.downloads[path] += 1
                    proxy.in_flight[path] += 1
                    proxy.most_in_flight[path] = max(proxy.most_in_flight[path], proxy.in_flight[path])
                try:
                    if self._held(proxy.delay):
                        return  # the client gave up
                    upstream = httpx.get(proxy.upstream + path, timeout=30)
                    self.send_response(upstream.status_code)
                    self.send_header("content-type", upstream.headers.get("content-type", ""))
                    self.send_header("content-length", str(len(upstream.content)))
                    self.end_headers()
                    self.wfile.write(upstream.content)
                except (httpx.HTTPError, OSError):
                    return
                finally:
                    with proxy.lock:
                        proxy.in_flight[path] -= 1

            def _held(self, seconds: float) -> bool:
                """Wait ``seconds``; True as soon as the client closes the connection."""
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    readable, _, _ = select.select([self.connection], [], [], 0.05)
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):
                        return True
                return False

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture(scope="module")
def slow_delivery() -> Iterator[tuple[SlowDelivery, int]]:
    proxy = SlowDelivery()
    port = free_port()
    server = proxy.serve(port)
    try:
        yield proxy, port
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def crash_stack(
    tmp_path_factory: pytest.TempPathFactory, slow_delivery: tuple[SlowDelivery, int]
) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("crash")
    ports = Ports.free()
    proxy, proxy_port = slow_delivery
    proxy.upstream = f"http://127.0.0.1:{ports.simulator}"
    system = Stack(
        var_dir,
        ports,
        ensure_dev_env(var_dir / "dev.env"),
        # Durable commits: with synchronous_commit off, an immediate stop loses acknowledged
        # transactions, which no consumer can be idempotent against (production runs with it on).
        pg_fsync=True,
        extra_env={
            "replicate-simulator": {
                "PICTURE_SIMULATOR_LATENCY_MS": "300",
                "PICTURE_SIMULATOR_START_DELAY_MS": "50",
                "PICTURE_SIMULATOR_PUBLIC_URL": f"http://127.0.0.1:{proxy_port}",  # files via the proxy
            },
            "orchestrator": SHORT,
            "media": {"PICTURE_INGEST_DOWNLOAD_BUDGET_SECONDS": DOWNLOAD_BUDGET},
            "gateway": GATEWAY,
        },
    )
    with running_stack(system):
        yield system


async def _wait_terminal(api: httpx.AsyncClient, generation_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = (await api.get(f"/v1/generations/{generation_id}")).json()
        if body["status"] in TERMINAL:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"generation not terminal after {timeout}s: {body['status']}")
        await asyncio.sleep(0.2)


async def test_one_users_ten_do_not_starve_another_user_and_the_per_user_limit_holds(
    crash_stack: Stack,
) -> None:
    stack = crash_stack
    user_a, user_b = uuid.uuid4(), uuid.uuid4()
    async with client_for(stack, user_a) as a, client_for(stack, user_b) as b:
        a_ids = []
        for i in range(10):
            response = await a.post(
                "/v1/generations", json={"model": "flux-schnell", "prompt": f"[sim:slow=400] fox {i}"}
            )
            assert response.status_code == 202, response.text
            a_ids.append(response.json()["id"])
        response = await b.post("/v1/generations", json={"model": "flux-schnell", "prompt": "a whale"})
        assert response.status_code == 202
        b_id = response.json()["id"]
        # While A's ten wait, the waiting ones report their place in the queue.
        listed = (await a.get("/v1/generations", params={"status": "queued", "limit": 100})).json()["data"]
        waiting = [g for g in listed if g["queue_position"] is not None]
        assert waiting, "some of A's generations wait for a slot"
        assert all(g["queue_position"] >= 1 and g["eta_seconds"] > 0 for g in waiting)
        a_done = [await _wait_terminal(a, gid) for gid in a_ids]
        b_done = await _wait_terminal(b, b_id)
    assert all(g["status"] == "completed" for g in [*a_done, b_done])
    assert b_done["started_at"] < max(g["started_at"] for g in a_done)
    engine = create_async_engine(stack.database_url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT dispatched_at, completed_at FROM orchestrator.generations "
                    "WHERE user_id = :u ORDER BY dispatched_at"
                ),
                {"u": user_a},
            )
        ).all()
    await engine.dispose()
    dispatched = [r.dispatched_at for r in rows]
    finished = sorted(r.completed_at for r in rows)
    # The k-th dispatch (k >= 3) waited for the (k-3)-th of A's to finish: never 4 in flight.
    for k in range(PER_USER, len(dispatched)):
        assert dispatched[k] >= finished[k - PER_USER], (k, dispatched, finished)
    print(f"\nA dispatched {[d.time().isoformat() for d in dispatched]}; B started {b_done['started_at']}")


async def _publish_handled(bus: Bus, event: c.PredictionEvent) -> None:
    """Publish an adapter event and wait until the orchestrator's consumer has settled it."""
    envelope = c.Envelope.wrap(event)
    ack = await bus.js.publish(
        c.PREDICTION_UPDATED.subject(generation_id=event.generation_id),
        envelope.model_dump_json().encode(),
        headers={"Nats-Msg-Id": str(envelope.id)},
    )
    deadline = time.monotonic() + 30
    while (await bus.js.consumer_info("PICTURE_EVT", "orchestrator-events")).ack_floor.stream_seq < ack.seq:
        assert time.monotonic() < deadline, "the orchestrator did not settle the event"
        await asyncio.sleep(0.05)


def _event(generation_id: uuid.UUID, attempt: int, status: c.PredictionStatus) -> c.PredictionEvent:
    if status is c.PredictionStatus.SUCCEEDED:
        return c.PredictionEvent(
            generation_id=generation_id,
            attempt=attempt,
            prediction_id=f"fake-{attempt}",
            status=status,
            output_urls=("http://127.0.0.1:1/never.webp",),
        )
    return c.PredictionEvent(
        generation_id=generation_id,
        attempt=attempt,
        prediction_id=None,
        status=status,
        error=c.ErrorInfo(kind=c.ErrorKind.TRANSIENT, code="gpu_lost", message="The GPU went away"),
    )


async def test_transient_failures_are_retried_after_the_configured_delays_then_fail(
    crash_stack: Stack,
) -> None:
    """Retry delays from PICTURE_RETRY_DELAYS_SECONDS (0.2, 0.5, 1.0 here); events of an older
    attempt and after the terminal state change nothing."""
    stack = crash_stack
    assert stack.nats is not None
    bus = await Bus.connect(stack.nats.url, "crash-tests")
    engine = create_async_engine(stack.database_url)
    try:
        async with client_for(stack, uuid.uuid4()) as api:
            response = await api.post(
                "/v1/generations", json={"model": "flux-schnell", "prompt": "[sim:slow=20000] flaky"}
            )
            generation_id = uuid.UUID(response.json()["id"])

            async def running(attempt: int) -> dict[str, Any]:
                deadline = time.monotonic() + 30
                while True:
                    body: dict[str, Any] = (await api.get(f"/v1/generations/{generation_id}")).json()
                    if body["status"] == "processing" and body["retry_count"] == attempt - 1:
                        return body
                    assert time.monotonic() < deadline, body
                    await asyncio.sleep(0.05)

            for attempt in (1, 2, 3, 4):
                await running(attempt)
                if attempt > 1:  # a late success of the previous attempt is ignored
                    await _publish_handled(
                        bus, _event(generation_id, attempt - 1, c.PredictionStatus.SUCCEEDED)
                    )
                    assert (await running(attempt))["status"] == "processing"
                await _publish_handled(bus, _event(generation_id, attempt, c.PredictionStatus.FAILED))
            # Reads come from the gateway's read model, kept from the orchestrator's events: the
            # client waits for the terminal state as any client would (Prefer: wait).
            done = (await api.get(f"/v1/generations/{generation_id}", headers={"Prefer": "wait=20"})).json()
            assert done["status"] == "failed"
            assert done["error_message"] == "The GPU went away"
            assert done["retry_count"] == 3
            reasons = [h["reason"] for h in done["history"] if h["status"] == "queued"][1:]
            assert [r.split(":")[0] for r in reasons] == [
                "retry 1 of 3 in 0.2s",
                "retry 2 of 3 in 0.5s",
                "retry 3 of 3 in 1s",
            ]
            # After the terminal state, a success changes nothing.
            await _publish_handled(bus, _event(generation_id, 4, c.PredictionStatus.SUCCEEDED))
            after = (await api.get(f"/v1/generations/{generation_id}")).json()
            assert after["status"] == "failed" and after["history"] == done["history"]
        async with engine.connect() as conn:
            errors = (
                await conn.execute(
                    text(
                        "SELECT error_type, error_kind, recovery_action, retry_count, "
                        "extract(epoch FROM retry_after - created_at) AS delay "
                        "FROM orchestrator.generation_errors WHERE generation_id = :id ORDER BY id"
                    ),
                    {"id": generation_id},
                )
            ).all()
        assert [(e.error_type, e.error_kind, e.recovery_action, e.retry_count) for e in errors] == [
            ("gpu_lost", "transient", "retry_predict", 0),
            ("gpu_lost", "transient", "retry_predict", 1),
            ("gpu_lost", "transient", "retry_predict", 2),
            ("gpu_lost", "transient", "fail", 3),
        ]
        assert failed_by_a_fault("gpu_lost", list(errors))  # how the crash run tells a fault's failure
        for error, delay in zip(errors, (0.2, 0.5, 1.0), strict=False):
            assert delay <= float(error.delay) < delay + 0.3, (float(error.delay), delay)
    finally:
        await bus.close()
        await engine.dispose()


def _restart(stack: Stack, name: str) -> None:
    stack.processes[name].kill()
    stack.processes[name].start()
    stack.processes[name].wait_ready(90)


async def _some_dispatched(generation_ids: list[str], owner: dict[str, httpx.AsyncClient]) -> bool:
    """Whether one of the generations has left the queue (the stack may be restarting)."""
    for gid in generation_ids:
        try:
            response = await owner[gid].get(f"/v1/generations/{gid}")
        except httpx.HTTPError:
            continue
        if response.status_code == 200 and response.json()["status"] not in ("pending", "queued"):
            return True
    return False


async def test_fifty_generations_survive_crashes_without_loss_or_duplicates(crash_stack: Stack) -> None:
    stack = crash_stack
    run = uuid.uuid4().hex[:8]
    clients = [client_for(stack, uuid.uuid4()) for _ in range(USERS)]
    ids: list[str] = []
    owner: dict[str, httpx.AsyncClient] = {}
    try:

        async def wave(size: int) -> None:
            start = len(ids)
            users = [clients[i % USERS] for i in range(start, start + size)]
            accepted = await asyncio.gather(
                *(submit(user, i, run) for user, i in zip(users, range(start, start + size), strict=True))
            )
            owner.update(zip(accepted, users, strict=True))
            ids.extend(accepted)
            # the next crash hits work in flight: wait until some of this wave left the queue
            await eventually(lambda: _some_dispatched(accepted, owner), timeout=60, what="the wave in flight")

        loop = asyncio.get_running_loop()
        await wave(10)
        await loop.run_in_executor(None, _restart, stack, "orchestrator")
        await wave(10)
        await loop.run_in_executor(None, _restart, stack, "replicate-adapter")
        await wave(10)
        await loop.run_in_executor(None, _restart, stack, "media")
        await wave(5)
        assert stack.nats is not None
        await loop.run_in_executor(None, stack.nats.kill)
        await loop.run_in_executor(None, stack.nats.start)
        await wave(5)
        assert stack.postgres is not None
        await loop.run_in_executor(None, stack.postgres.kill)
        await loop.run_in_executor(None, stack.postgres.start)
        await wave(5)
        await loop.run_in_executor(None, _restart, stack, "orchestrator")
        await wave(5)
        assert len(set(ids)) == TOTAL

        await all_terminal(stack, ids, owner, timeout=150)
    finally:
        for client in clients:
            await client.aclose()

    engine = create_async_engine(stack.database_url)
    try:
        async with engine.connect() as conn:
            gens = {
                str(r.id): r
                for r in (
                    await conn.execute(
                        text(
                            "SELECT id, status, attempt, cost_usd, error_code, error_message, "
                            "parameters->>'prompt' AS prompt "
                            "FROM orchestrator.generations WHERE id = ANY(:ids)"
                        ),
                        {"ids": [uuid.UUID(i) for i in ids]},
                    )
                ).all()
            }
            images = Counter(
                str(r.generation_id)
                for r in await conn.execute(
                    text("SELECT generation_id FROM catalog.images WHERE generation_id = ANY(:ids)"),
                    {"ids": [uuid.UUID(i) for i in ids]},
                )
            )
            objects = Counter(
                str(r.generation_id)
                for r in await conn.execute(
                    text("SELECT generation_id FROM media.stored_objects WHERE generation_id = ANY(:ids)"),
                    {"ids": [uuid.UUID(i) for i in ids]},
                )
            )
            adapter = (
                await conn.execute(
                    text(
                        "SELECT generation_id, attempt, status, cost_usd FROM adapter.predictions "
                        "WHERE generation_id = ANY(:ids) AND prediction_id IS NOT NULL"
                    ),
                    {"ids": [uuid.UUID(i) for i in ids]},
                )
            ).all()
            errors: dict[str, list[Any]] = {}
            for r in await conn.execute(
                text(
                    "SELECT generation_id, error_type, error_kind, error_message, recovery_action "
                    "FROM orchestrator.generation_errors WHERE generation_id = ANY(:ids) ORDER BY id"
                ),
                {"ids": [uuid.UUID(i) for i in ids]},
            ):
                errors.setdefault(str(r.generation_id), []).append(r)
    finally:
        await engine.dispose()
    simulated = Counter(
        p["input"]["prompt"]
        for p in await simulator_predictions(stack)
        if str(p.get("input", {}).get("prompt", "")).startswith(f"crash {run} ")
    )
    outcomes = Counter(g.status for g in gens.values())
    per_attempt = Counter((str(a.generation_id), a.attempt) for a in adapter)
    created = Counter(str(a.generation_id) for a in adapter)
    print(
        f"\ncrash run: {dict(outcomes)}; catalog images {sum(images.values())}, media objects "
        f"{sum(objects.values())}, simulator predictions {sum(simulated.values())}, adapter predictions "
        f"{len(adapter)}, attempts total {sum(g.attempt for g in gens.values())}, max images/generation "
        f"{max(images.values(), default=0)}"
    )
    for gid, g in gens.items():
        if g.status != "completed":
            print(f"  {gid} {g.status}: {g.error_code} {g.error_message!r}; errors {errors.get(gid, [])}")
    # Nothing lost: every accepted generation is there, and each one completed or failed by a
    # fault (no cancel was asked for).
    assert len(gens) == TOTAL and set(outcomes) <= {"completed", "failed"}, outcomes
    assert outcomes["completed"] > 0
    for gid, g in gens.items():
        assert images[gid] <= 1, gid
        if g.status == "completed":
            assert images[gid] == 1 and objects[gid] == 2, (gid, images[gid], objects[gid])
            assert g.cost_usd == 0.003, (gid, g.cost_usd)  # one prediction's cost, not a sum
        else:
            assert readable(g.error_message), (gid, g.error_message)
            assert failed_by_a_fault(g.error_code, errors.get(gid, [])), (gid, g.error_code, errors.get(gid))
        # The adapter and the simulator created at most one prediction per attempt.
        assert created[gid] <= g.attempt, (gid, created[gid], g.attempt)
        assert simulated[g.prompt] <= g.attempt, (gid, simulated[g.prompt], g.attempt)
    assert max(per_attempt.values()) == 1


async def test_a_download_slower_than_the_sweepers_limit_never_runs_twice_at_once(
    crash_stack: Stack, slow_delivery: tuple[SlowDelivery, int]
) -> None:
    """The source takes longer than the "downloading" limit (8 s): the sweeper does not resume
    the generation while media is still downloading, because media gives up at its download
    budget (5 s) first; each later attempt starts after the one before ended."""
    proxy, _ = slow_delivery
    proxy.delay = 12.0
    seen = set(proxy.downloads)
    try:
        async with client_for(crash_stack, uuid.uuid4()) as api:
            response = await api.post(
                "/v1/generations", json={"model": "flux-schnell", "prompt": "a slow cat"}
            )
            assert response.status_code == 202, response.text
            view = await _wait_terminal(api, response.json()["id"], timeout=120)
    finally:
        proxy.delay = 0.0
    files = [path for path in proxy.downloads if path not in seen and path.startswith("/delivery/")]
    assert len(files) == 1, proxy.downloads
    assert proxy.downloads[files[0]] >= 2, proxy.downloads  # retried, so overlap was possible
    assert proxy.most_in_flight[files[0]] == 1, proxy.most_in_flight
    assert view["status"] == "failed", view  # every attempt ran into the budget
    assert "download" in (view["error_message"] or ""), view


async def test_deadlines_fail_what_did_not_start_or_finish_in_time(crash_stack: Stack) -> None:
    """Last in the module: restarts the orchestrator with a 4 s start deadline and an 8 s total
    timeout. Three slow generations hold the user's slots; the fourth never starts."""
    stack = crash_stack
    orchestrator = stack.processes["orchestrator"]
    orchestrator.env.update(PICTURE_START_DEADLINE_SECONDS="4", PICTURE_TOTAL_TIMEOUT_SECONDS="8")
    await asyncio.get_running_loop().run_in_executor(None, _restart, stack, "orchestrator")
    async with client_for(stack, uuid.uuid4()) as api:
        slow = []
        for i in range(PER_USER):
            response = await api.post(
                "/v1/generations", json={"model": "flux-schnell", "prompt": f"[sim:slow=30000] slow {i}"}
            )
            slow.append(response.json()["id"])
        waiting = (
            await api.post("/v1/generations", json={"model": "flux-schnell", "prompt": "never started"})
        ).json()["id"]
        late = await _wait_terminal(api, waiting, timeout=30)
        assert late["status"] == "failed"
        assert late["error_message"] == "The generation did not start within 4 seconds"
        assert late["started_at"] is None
        for gid in slow:
            done = await _wait_terminal(api, gid, timeout=30)
            assert done["status"] == "failed"
            assert done["error_message"] == "The generation did not finish within 8 seconds"
    engine = create_async_engine(stack.database_url)
    try:

        async def canceled_at_replicate() -> bool:
            async with engine.connect() as conn:
                statuses = (
                    (
                        await conn.execute(
                            text("SELECT status FROM adapter.predictions WHERE generation_id = ANY(:ids)"),
                            {"ids": [uuid.UUID(g) for g in slow]},
                        )
                    )
                    .scalars()
                    .all()
                )
            return sorted(statuses) == ["canceled"] * PER_USER

        deadline = time.monotonic() + 30
        while not await canceled_at_replicate():
            assert time.monotonic() < deadline, "the timed-out predictions were not cancelled"
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


def _kill_everything(stack: Stack) -> None:
    """SIGKILL of every process of the stack, as a kill -9 of a whole `make run` would do."""
    for process in stack.processes.values():
        process.kill()
    assert stack.nats is not None and stack.postgres is not None
    stack.nats.kill()
    stack.postgres.kill()
    assert stack.pids() == {}


async def test_every_generation_completes_once_after_the_whole_stack_is_killed_and_restarted(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Generations in flight at the simulator when every process gets SIGKILL complete after a
    new start on the same folder and ports (the simulator kept its predictions): none failed
    ("the source answered 404"), none has two images, no attempt two predictions."""
    var_dir = tmp_path_factory.mktemp("restart")
    ports, secrets = Ports.free(), ensure_dev_env(var_dir / "dev.env")

    def build() -> Stack:
        return Stack(
            var_dir,
            ports,
            secrets,
            pg_fsync=True,
            extra_env={
                "replicate-simulator": {"PICTURE_SIMULATOR_LATENCY_MS": "4000"},
                "gateway": GATEWAY,
                # A webhook sent while the gateway was still down is not retried for long.
                "replicate-adapter": {"PICTURE_REPLICATE_WEBHOOK_POLL_INTERVAL_SECONDS": "2"},
            },
        )

    run = uuid.uuid4().hex[:8]
    users = [uuid.uuid4() for _ in range(2)]
    started = time.monotonic()
    first = build()
    with running_stack(first):
        owners: dict[str, uuid.UUID] = {}
        for index in range(2 * PER_USER):
            user = users[index % len(users)]
            async with client_for(first, user) as api:
                owners[await submit(api, index, run)] = user
        async with httpx.AsyncClient(timeout=10) as plain:
            deadline = time.monotonic() + 60
            while (await plain.get(f"{first.simulator_url}/_control/stats")).json()["in_flight"] < len(users):
                assert time.monotonic() < deadline, "no prediction got in flight"
                await asyncio.sleep(0.2)
        await asyncio.get_running_loop().run_in_executor(None, _kill_everything, first)
    killed = time.monotonic()
    second = build()
    # `make run` migrates again too; that is a no-op here and takes a minute on a loaded machine.
    with running_stack(second, migrate=False):
        restarted = time.monotonic()
        for generation_id, user in owners.items():
            async with client_for(second, user) as api:
                done = await _wait_terminal(api, generation_id, timeout=120)
            assert done["status"] == "completed", (generation_id, done.get("error_message"))
            # On its first attempt: the prediction made before the kill finished it (a simulator
            # that forgot it would answer 404 and the generation would need a retry).
            assert done["retry_count"] == 0, (generation_id, done["history"])
        engine = create_async_engine(second.database_url)
        try:
            async with engine.connect() as conn:
                ids = [uuid.UUID(g) for g in owners]
                images = Counter(
                    str(r.generation_id)
                    for r in await conn.execute(
                        text("SELECT generation_id FROM catalog.images WHERE generation_id = ANY(:ids)"),
                        {"ids": ids},
                    )
                )
                rows = (
                    await conn.execute(
                        text(
                            "SELECT generation_id, attempt, output FROM adapter.predictions "
                            "WHERE generation_id = ANY(:ids) AND prediction_id IS NOT NULL"
                        ),
                        {"ids": ids},
                    )
                ).all()
                attempts = Counter((str(r.generation_id), r.attempt) for r in rows)
        finally:
            await engine.dispose()
        simulated = Counter(
            p["input"]["prompt"]
            for p in await simulator_predictions(second)
            if str(p.get("input", {}).get("prompt", "")).startswith(f"crash {run} ")
        )
        async with httpx.AsyncClient() as plain:  # outputs of before the kill are still served
            for row in rows:
                for url in row.output:
                    assert (await plain.get(url)).status_code == 200, url
    assert images == dict.fromkeys(owners, 1)
    assert set(attempts.values()) == {1}
    assert len(simulated) == len(owners) and set(simulated.values()) == {1}, simulated
    print(
        f"\nwhole-stack restart: {len(owners)} generations completed, predictions "
        f"{sum(simulated.values())}; killed after {killed - started:.0f} s, up again after "
        f"{restarted - killed:.0f} s, all done {time.monotonic() - restarted:.0f} s later"
    )
