"""The adapter end to end: NATS command in, prediction at the simulator, events out."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from nats.js.errors import NotFoundError

from picture.common.contracts import (
    CANCEL_PREDICTION,
    CMD_STREAM,
    PREDICT,
    CancelPredictionCommand,
    Envelope,
    ErrorKind,
    GenerationParameters,
    PredictCommand,
    PredictionStatus,
)
from picture.common.ids import derived_id
from picture.common.messaging import Bus
from picture.devstack.waiting import eventually
from picture.replicate_adapter.app import create_app
from picture.replicate_adapter.settings import AdapterSettings

from .conftest import SIM_TOKEN, Infra, running, seed_model, subscribe

FLUX = seed_model("flux-schnell")


def command(prompt: str, **params: Any) -> PredictCommand:
    return PredictCommand(
        generation_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        attempt=1,
        model=FLUX,
        parameters=GenerationParameters(
            **({"prompt": prompt, "width": 1344, "height": 768, "seed": 0} | params)
        ),
    )


async def sim_predictions(infra: Infra, marker: str) -> list[dict[str, Any]]:
    """Predictions at the simulator whose prompt carries ``marker``."""
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {SIM_TOKEN}"}, timeout=10) as http:
        url: str | None = f"{infra.sim_url}/v1/predictions"
        while url:
            page = (await http.get(url)).raise_for_status().json()
            found += [p for p in page["results"] if marker in str(p.get("input", {}).get("prompt"))]
            url = page.get("next")
    return found


async def publish_command(bus: Bus, cmd: PredictCommand) -> int:
    """Publish as :meth:`Bus.publish` does; the stream sequence, to see when it is handled."""
    envelope = Envelope.wrap(cmd)
    ack = await bus.js.publish(
        PREDICT.subject(), envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": str(envelope.id)}
    )
    return ack.seq


async def acknowledged(bus: Bus, seq: int) -> bool:
    """Whether the command stream dropped message ``seq`` (a work queue: acknowledged)."""
    try:
        await bus.js.get_msg(CMD_STREAM.name, seq)
    except NotFoundError:
        return True
    return False


async def test_flux_schnell_succeeds_with_a_real_image(
    settings: AdapterSettings, bus: Bus, infra: Infra
) -> None:
    cmd = command(f"a lighthouse at dusk {uuid.uuid4()}")
    async with running(create_app(settings)), subscribe(bus, cmd.generation_id) as events:
        await bus.publish(PREDICT, cmd)
        envelope, started = await events.next_with_envelope()
        assert started.status is PredictionStatus.STARTED
        assert started.prediction_id
        assert envelope.id == derived_id("prediction.started", cmd.generation_id, 1)
        envelope, done = await events.next_with_envelope()
    assert envelope.id == derived_id("prediction.terminal", cmd.generation_id, 1)
    assert done.status is PredictionStatus.SUCCEEDED, done.error
    assert done.prediction_id == started.prediction_id
    assert done.cost_usd == 0.003
    assert done.predict_time_seconds is not None
    assert done.predict_time_seconds > 0
    assert len(done.output_urls) == 1
    async with httpx.AsyncClient(timeout=10) as http:
        image = (await http.get(done.output_urls[0])).raise_for_status()
    assert image.headers["content-type"] == "image/webp"
    assert image.content[:4] == b"RIFF"
    assert image.content[8:12] == b"WEBP"
    # What reached the simulator is the mapped input (16:9, seed 0 kept).
    [sent] = await sim_predictions(infra, str(cmd.parameters.prompt.split()[-1]))
    assert sent["input"]["aspect_ratio"] == "16:9"
    assert sent["input"]["seed"] == 0


async def test_failed_prediction_is_permanent_with_the_model_error(
    settings: AdapterSettings, bus: Bus
) -> None:
    cmd = command("a cat [sim:fail]")
    async with running(create_app(settings)), subscribe(bus, cmd.generation_id) as events:
        await bus.publish(PREDICT, cmd)
        assert (await events.next()).status is PredictionStatus.STARTED
        done = await events.next()
    assert done.status is PredictionStatus.FAILED
    assert done.error is not None
    assert done.error.kind is ErrorKind.PERMANENT
    assert done.error.code == "prediction_failed"
    assert done.error.message
    assert done.error.message != "The model failed without an error message"


async def test_unsupported_parameter_fails_without_calling_replicate(
    settings: AdapterSettings, bus: Bus, infra: Infra
) -> None:
    marker = str(uuid.uuid4())
    cmd = command(f"a dog {marker}", negative_prompt="blurry")
    async with running(create_app(settings)), subscribe(bus, cmd.generation_id) as events:
        await bus.publish(PREDICT, cmd)
        done = await events.next()
    assert done.status is PredictionStatus.FAILED
    assert done.error is not None
    assert done.error.kind is ErrorKind.PERMANENT
    assert done.error.code == "invalid_parameters"
    assert "negative_prompt" in done.error.message
    assert await sim_predictions(infra, marker) == []


async def test_duplicate_command_creates_one_prediction(
    settings: AdapterSettings, bus: Bus, infra: Infra
) -> None:
    marker = str(uuid.uuid4())
    cmd = command(f"a fox {marker} [sim:slow=600]")
    async with running(create_app(settings)), subscribe(bus, cmd.generation_id) as events:
        # two envelopes, two message ids: both delivered
        sequences = [await publish_command(bus, cmd), await publish_command(bus, cmd)]
        statuses = [(await events.next()).status for _ in range(3)]
        # the second "started" has the same message id: JetStream drops it, so 2 or 3 events
        while statuses[-1] is not PredictionStatus.SUCCEEDED:
            statuses.append((await events.next()).status)

        async def both_commands_handled() -> bool:
            return all([await acknowledged(bus, seq) for seq in sequences])

        await eventually(both_commands_handled, what="the adapter acknowledging both commands")
    assert PredictionStatus.SUCCEEDED in statuses
    assert len(await sim_predictions(infra, marker)) == 1


async def test_restart_resumes_polling(settings: AdapterSettings, bus: Bus) -> None:
    # Long enough to outlast a graceful stop (its consumers end their last pull, up to 1 s,
    # while the poller still runs).
    cmd = command("a slow harbour [sim:slow=4000]")
    async with subscribe(bus, cmd.generation_id) as events:
        async with running(create_app(settings)):
            await bus.publish(PREDICT, cmd)
            started = await events.next()
            assert started.status is PredictionStatus.STARTED
        # The app is down while the prediction runs; a new process picks it up from the table.
        # Nothing may be reported meanwhile: a window of silence, so a sleep is the check.
        await asyncio.sleep(0.3)
        assert events.queue.empty()
        async with running(create_app(settings)):
            done = await events.next()
    assert done.status is PredictionStatus.SUCCEEDED
    assert done.prediction_id == started.prediction_id


async def test_cancel_reports_canceled(settings: AdapterSettings, bus: Bus) -> None:
    cmd = command("a slow canal [sim:slow=3000]")
    async with running(create_app(settings)), subscribe(bus, cmd.generation_id) as events:
        await bus.publish(PREDICT, cmd)
        assert (await events.next()).status is PredictionStatus.STARTED
        await bus.publish(
            CANCEL_PREDICTION,
            CancelPredictionCommand(generation_id=cmd.generation_id, attempt=cmd.attempt),
        )
        done = await events.next()
    assert done.status is PredictionStatus.CANCELED


async def test_replicate_down_fails_transient_after_last_delivery(
    settings: AdapterSettings, bus: Bus, infra: Infra
) -> None:
    cmd = command(f"an owl {uuid.uuid4()}")
    async with (
        running(create_app(settings)),
        subscribe(bus, cmd.generation_id) as events,
        httpx.AsyncClient(base_url=infra.sim_url) as http,
    ):
        (await http.put("/_control/config", json={"force_status": 503, "force_count": 3})).raise_for_status()
        await bus.publish(PREDICT, cmd)
        done = await events.next(timeout=20)
        stats = (await http.get("/_control/stats")).json()
    assert done.status is PredictionStatus.FAILED, stats
    assert done.error is not None
    assert done.error.kind is ErrorKind.TRANSIENT
    assert done.error.code == "replicate_unavailable"
