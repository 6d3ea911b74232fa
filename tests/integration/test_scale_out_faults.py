"""Two replicas of every service on a three-node JetStream cluster, proven under faults.

100 generations from 10 users are in flight while one replica of each service is SIGKILLed
(the gateway's clients fail over to the other replica), the NATS server leading the streams
is SIGKILLed and PostgreSQL is stopped at once; then everything is started again. Afterwards
every generation is terminal, at least 99 % completed (a failure has a readable reason caused
by a fault), no generation has two catalog images, none is charged twice (the cost of one
prediction), each attempt made at most one prediction (adapter and simulator), and SSE
followers (resuming with Last-Event-ID on whichever gateway answers) never saw a generation's
state go back. The counts are printed.

Then, on the same stack, a rolling restart under load: every replica is stopped (SIGTERM) and
started again one at a time, the next only once the new one is ready, as a Deployment rollout
does, while generations are submitted and read: no client request fails and no generation is
lost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import SERVICES, ManagedProcess, Ports, Stack
from picture.devstack.waiting import eventually
from tests.integration.conftest import running_stack
from tests.integration.faults import (
    GATEWAY,
    SHORT,
    TERMINAL,
    all_terminal,
    client_for,
    failed_by_a_fault,
    readable,
    simulator_predictions,
    submit,
)
from tests.integration.test_gateway_live import events

USERS = 10
PER_WAVE = 25
WAVES = 4
TOTAL = PER_WAVE * WAVES
FOLLOWED = 20  # generations followed over SSE from start to end


class Failover(httpx.AsyncBaseTransport):
    """Sends each request to the current gateway replica; when it refuses connections (killed,
    stopped), to the next one. A request that may be repeated (a GET, a POST with an
    Idempotency-Key) is also sent to the next replica when the connection closed before any
    answer (a replica stopping closes its idle keep-alive connections). What a load balancer in
    front of the replicas does."""

    def __init__(self, urls: list[str], first: int) -> None:
        self.ports = [httpx.URL(url).port for url in urls]
        self.current = first % len(urls)
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(len(self.ports)):
            request.url = request.url.copy_with(port=self.ports[self.current])
            try:
                return await self.inner.handle_async_request(request)
            except httpx.ConnectError:
                self.current = (self.current + 1) % len(self.ports)
            except httpx.RemoteProtocolError:
                if request.method != "GET" and "Idempotency-Key" not in request.headers:
                    raise
                self.current = (self.current + 1) % len(self.ports)
        raise httpx.ConnectError("no gateway replica answers", request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def scaled_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("scaled")
    ports = Ports.free()
    system = Stack(
        var_dir,
        ports,
        ensure_dev_env(var_dir / "dev.env"),
        # Durable commits: with synchronous_commit off, an immediate stop loses acknowledged
        # transactions, which no consumer can be idempotent against (production runs with it on).
        pg_fsync=True,
        replicas=dict.fromkeys(SERVICES, 2),
        nats_nodes=3,
        extra_env={
            "replicate-simulator": {
                "PICTURE_SIMULATOR_LATENCY_MS": "300",
                "PICTURE_SIMULATOR_START_DELAY_MS": "50",
            },
            "orchestrator": SHORT,
            "gateway": {**GATEWAY, "PICTURE_SSE_HEARTBEAT_SECONDS": "1"},
            # A killed adapter's predictions are taken over within 6 + 2 s.
            "replicate-adapter": {
                "PICTURE_REPLICATE_POLL_LEASE_SECONDS": "6",
                "PICTURE_REPLICATE_POLL_HEARTBEAT_SECONDS": "2",
            },
        },
    )
    with running_stack(system):
        yield system


async def follow(api: httpx.AsyncClient, generation_id: str, seen: list[tuple[int, str]]) -> None:
    """Follow one generation over SSE until it is terminal, resuming after a dropped stream
    with Last-Event-ID (on whichever gateway replica answers). ``seen``: (history length,
    status) of every state shown, in order: the history grows by one row per change, so its
    length is the state's version as a client can see it."""
    last_id: int | None = None
    while True:
        headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
        try:
            async with api.stream(
                "GET",
                f"/v1/generations/{generation_id}/events",
                headers=headers,
                timeout=httpx.Timeout(30, read=10),
            ) as response:
                if response.status_code != 200:
                    await asyncio.sleep(0.3)
                    continue
                async for event in events(response):
                    if event.event != "generation":
                        continue
                    seen.append((len(event.data["history"]), event.data["status"]))
                    if event.id is not None:
                        last_id = event.id
                    if event.data["status"] in TERMINAL:
                        return
        except httpx.HTTPError:
            await asyncio.sleep(0.3)


def went_back(seen: list[tuple[int, str]]) -> bool:
    versions = [version for version, _ in seen]
    terminal_at = next((i for i, (_, status) in enumerate(seen) if status in TERMINAL), len(seen))
    return versions != sorted(versions) or len({status for _, status in seen[terminal_at:]}) > 1


def kill(process: ManagedProcess) -> None:
    process.kill()


def start(process: ManagedProcess) -> None:
    process.start()
    process.wait_ready(90)


async def test_two_replicas_of_everything_on_three_nats_nodes_survive_kills(scaled_stack: Stack) -> None:
    stack = scaled_stack
    began = time.monotonic()
    loop = asyncio.get_running_loop()
    run = uuid.uuid4().hex[:8]
    gateways = stack.gateway_urls
    assert len(gateways) == 2 and len(stack.nats_cluster) == 3
    transports = [Failover(gateways, i) for i in range(USERS)]
    clients = [client_for(stack, uuid.uuid4(), transports[i]) for i in range(USERS)]
    ids: list[str] = []
    owner: dict[str, httpx.AsyncClient] = {}
    sse: dict[str, list[tuple[int, str]]] = {}
    followers: list[asyncio.Task[None]] = []
    killed: dict[str, ManagedProcess] = {}
    faults: list[str] = []

    async def wave() -> None:
        begin = len(ids)
        users = [clients[i % USERS] for i in range(begin, begin + PER_WAVE)]
        accepted = await asyncio.gather(
            *(submit(user, i, run) for user, i in zip(users, range(begin, begin + PER_WAVE), strict=True))
        )
        owner.update(zip(accepted, users, strict=True))
        ids.extend(accepted)
        for gid in accepted[: FOLLOWED // WAVES]:
            sse[gid] = []
            followers.append(asyncio.create_task(follow(owner[gid], gid, sse[gid])))

        async def some_in_flight() -> bool:
            for gid in accepted:
                try:
                    response = await owner[gid].get(f"/v1/generations/{gid}")
                except httpx.HTTPError:
                    continue
                if response.status_code == 200 and response.json()["status"] not in ("pending", "queued"):
                    return True
            return False

        # the next fault hits work in flight
        await eventually(some_in_flight, timeout=60, what="the wave in flight")

    async def kill_replica(service: str) -> None:
        process = stack.replicas_of(service)[0]
        await loop.run_in_executor(None, kill, process)
        killed[process.name] = process
        faults.append(f"SIGKILL {process.name}")

    try:
        await wave()
        await kill_replica("orchestrator")
        await kill_replica("replicate-adapter")
        await wave()
        leaders = Counter(stack.stream_leaders().values())
        assert leaders, "no stream leader known"
        leader = stack.nats_node(leaders.most_common(1)[0][0])
        await loop.run_in_executor(None, leader.kill)
        faults.append(f"SIGKILL NATS {leader.server_name} (leader of {leaders[leader.server_name]} streams)")
        await kill_replica("media")
        await kill_replica("catalog")
        await wave()
        await kill_replica("gateway")
        await loop.run_in_executor(None, leader.start)
        assert stack.postgres is not None
        await loop.run_in_executor(None, stack.postgres.kill)
        await loop.run_in_executor(None, stack.postgres.start)
        faults.append("PostgreSQL immediate stop and restart")
        await asyncio.gather(
            *(
                loop.run_in_executor(None, start, killed.pop(name))
                for name in ("orchestrator", "replicate-adapter")
            )
        )
        await wave()
        await asyncio.gather(*(loop.run_in_executor(None, start, process) for process in killed.values()))
        killed.clear()
        assert len(set(ids)) == TOTAL

        await all_terminal(stack, ids, owner, timeout=120)
        async with asyncio.timeout(30):
            await asyncio.gather(*followers)
    finally:
        for task in followers:
            task.cancel()
        for client in clients:
            await client.aclose()
        for process in killed.values():  # a failure midway: leave the stack whole for teardown
            process.start()

    engine = create_async_engine(stack.database_url)
    uuids = [uuid.UUID(i) for i in ids]
    try:
        async with engine.connect() as conn:
            gens = {
                str(r.id): r
                for r in await conn.execute(
                    text(
                        "SELECT id, status, attempt, cost_usd, error_code, error_message, "
                        "parameters->>'prompt' AS prompt FROM orchestrator.generations WHERE id = ANY(:ids)"
                    ),
                    {"ids": uuids},
                )
            }
            images = Counter(
                str(r.generation_id)
                for r in await conn.execute(
                    text("SELECT generation_id FROM catalog.images WHERE generation_id = ANY(:ids)"),
                    {"ids": uuids},
                )
            )
            adapter = (
                await conn.execute(
                    text(
                        "SELECT generation_id, attempt, owner FROM adapter.predictions "
                        "WHERE generation_id = ANY(:ids) AND prediction_id IS NOT NULL"
                    ),
                    {"ids": uuids},
                )
            ).all()
            errors: dict[str, list[Any]] = {}
            for r in await conn.execute(
                text(
                    "SELECT generation_id, error_type, error_kind, error_message, recovery_action "
                    "FROM orchestrator.generation_errors WHERE generation_id = ANY(:ids) ORDER BY id"
                ),
                {"ids": uuids},
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
    backwards = [gid for gid, seen in sse.items() if went_back(seen)]
    print(
        f"\nscale-out fault run ({time.monotonic() - began:.0f}s; {'; '.join(faults)}): {dict(outcomes)}; "
        f"catalog images {sum(images.values())} (max per generation {max(images.values(), default=0)}), "
        f"charged twice {sum(1 for g in gens.values() if g.status == 'completed' and g.cost_usd != 0.003)}; "
        f"adapter predictions {len(adapter)} over {len(per_attempt)} attempts "
        f"(pollers: {dict(Counter(a.owner.split(':')[1] if a.owner else None for a in adapter))}), "
        f"simulator predictions {sum(simulated.values())}, "
        f"attempts total {sum(g.attempt for g in gens.values())}; "
        f"SSE followed {len(sse)} generations, {sum(len(s) for s in sse.values())} states, "
        f"{len(backwards)} went back"
    )
    for gid, g in gens.items():
        if g.status != "completed":
            print(f"  {gid} {g.status}: {g.error_code} {g.error_message!r}; errors {errors.get(gid, [])}")
    assert len(gens) == TOTAL and set(outcomes) <= {"completed", "failed"}, outcomes
    assert outcomes["completed"] >= 0.99 * TOTAL, outcomes
    for gid, g in gens.items():
        assert images[gid] <= 1, (gid, images[gid])
        if g.status == "completed":
            assert images[gid] == 1, gid
            assert g.cost_usd == 0.003, (gid, g.cost_usd)  # one prediction's cost, not a sum
        else:
            assert readable(g.error_message), (gid, g.error_message)
            assert failed_by_a_fault(g.error_code, errors.get(gid, [])), (gid, g.error_code, errors.get(gid))
        assert simulated[g.prompt] <= g.attempt, (gid, simulated[g.prompt], g.attempt)
    assert max(per_attempt.values()) == 1
    assert not backwards, {gid: sse[gid] for gid in backwards}
    assert all(seen and seen[-1][1] in TERMINAL for seen in sse.values()), sse


ROLLING = 40


async def test_a_rolling_restart_of_every_replica_fails_no_request_and_loses_no_generation(
    scaled_stack: Stack,
) -> None:
    stack = scaled_stack
    began = time.monotonic()
    loop = asyncio.get_running_loop()
    run = uuid.uuid4().hex[:8]
    clients = [client_for(stack, uuid.uuid4(), Failover(stack.gateway_urls, i)) for i in range(USERS)]
    requests: Counter[str] = Counter()
    failures: list[str] = []
    ids: dict[str, httpx.AsyncClient] = {}

    async def call(api: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        requests[method] += 1
        try:
            response = await api.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            failures.append(f"{method} {path}: {type(exc).__name__} {exc}")
            return None
        if response.status_code >= 500:
            failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response

    async def load(stop: asyncio.Event) -> None:
        """Submit ROLLING generations spread over the rollout (one every 1.5 s: the rollout
        takes about a minute here), reading the latest ones all along, until the rollout ended
        and all were submitted."""
        index = 0
        while index < ROLLING or not stop.is_set():
            if index < ROLLING:
                api = clients[index % USERS]
                body = {
                    "model": "flux-schnell",
                    "prompt": f"rolling {run} {index}",
                    "width": 256,
                    "height": 256,
                }
                response = await call(
                    api, "POST", "/v1/generations", json=body, headers={"Idempotency-Key": f"{run}-{index}"}
                )
                if response is not None and response.status_code == 202:
                    ids[response.json()["id"]] = api
                index += 1
            for gid, owner in list(ids.items())[-5:]:
                await call(owner, "GET", f"/v1/generations/{gid}")
            await asyncio.sleep(1.5)

    stop = asyncio.Event()
    loader = asyncio.create_task(load(stop))
    restarted = []
    try:
        await asyncio.sleep(2)
        for service in SERVICES:
            for process in stack.replicas_of(service):
                await loop.run_in_executor(None, process.stop)
                await loop.run_in_executor(None, start, process)
                restarted.append(process.name)
        stop.set()
        await loader
        assert len(ids) == ROLLING, f"{len(ids)} of {ROLLING} accepted"

        deadline = time.monotonic() + 120
        statuses: dict[str, str] = {}
        while not (len(statuses) == len(ids) and set(statuses.values()) <= TERMINAL):
            for gid, api in ids.items():
                if statuses.get(gid) not in TERMINAL:
                    response = await call(api, "GET", f"/v1/generations/{gid}")
                    if response is not None and response.status_code == 200:
                        statuses[gid] = response.json()["status"]
            assert time.monotonic() < deadline, f"not all terminal: {Counter(statuses.values())}"
            await asyncio.sleep(0.5)
    finally:
        loader.cancel()
        for client in clients:
            await client.aclose()
    outcomes = Counter(statuses.values())
    print(
        f"\nrolling restart ({time.monotonic() - began:.0f}s; {len(restarted)} processes one at a time: "
        f"{', '.join(restarted)}): requests {dict(requests)}, failed {len(failures)}; "
        f"generations {dict(outcomes)}"
    )
    for failure in failures:
        print(f"  {failure}")
    assert not failures
    assert outcomes == {"completed": ROLLING}, outcomes
