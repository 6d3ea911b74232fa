from tests.integration.test_crash_recovery import *  # noqa
from tests.integration.test_crash_recovery import _client, _submit, _wait_terminal, _simulator_predictions
import itertools
_COUNTER = itertools.count()
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
                "replicate-simulator": {"PICTURE_SIMULATOR_LATENCY_MS": "4000", "PICTURE_SIMULATOR_DATA_DIR": str(var_dir / f"sim{next(_COUNTER)}")},
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
            async with _client(first, user) as api:
                owners[await _submit(api, index, run)] = user
        async with httpx.AsyncClient(timeout=10) as plain:
            deadline = time.monotonic() + 60
            while (await plain.get(f"{first.simulator_url}/_control/stats")).json()["in_flight"] < len(users):
                assert time.monotonic() < deadline, "no prediction got in flight"
                await asyncio.sleep(0.2)
        await asyncio.get_running_loop().run_in_executor(None, _kill_everything, first)
    killed = time.monotonic()
    second = build()
    with running_stack(second):
        restarted = time.monotonic()
        for generation_id, user in owners.items():
            async with _client(second, user) as api:
                done = await _wait_terminal(api, generation_id, timeout=120)
            assert done["status"] == "completed", (generation_id, done.get("error_message"))
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
                attempts = Counter(
                    (str(r.generation_id), r.attempt)
                    for r in await conn.execute(
                        text(
                            "SELECT generation_id, attempt FROM adapter.predictions "
                            "WHERE generation_id = ANY(:ids) AND prediction_id IS NOT NULL"
                        ),
                        {"ids": ids},
                    )
                )
        finally:
            await engine.dispose()
        simulated = Counter(
            p["input"]["prompt"]
            for p in await _simulator_predictions(second)
            if str(p.get("input", {}).get("prompt", "")).startswith(f"crash {run} ")
        )
    assert images == dict.fromkeys(owners, 1)
    assert set(attempts.values()) == {1}
    assert len(simulated) == len(owners) and set(simulated.values()) == {1}, simulated
    print(
        f"\nwhole-stack restart: {len(owners)} generations completed, predictions "
        f"{sum(simulated.values())}; killed after {killed - started:.0f} s, up again after "
        f"{restarted - killed:.0f} s, all done {time.monotonic() - restarted:.0f} s later"
    )
