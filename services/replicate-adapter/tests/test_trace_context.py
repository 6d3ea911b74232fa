"""The terminal prediction event stays in the predict command's trace, even when another
process (after a restart) publishes it: the trace context is kept with the prediction row."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate

from picture.common.contracts import PREDICT, PREDICTION_UPDATED, Envelope, PredictionEvent, PredictionStatus
from picture.common.messaging import Bus
from picture.replicate_adapter.app import create_app
from picture.replicate_adapter.settings import AdapterSettings

from .conftest import running
from .test_service import command


async def test_the_terminal_event_after_a_restart_continues_the_commands_trace(
    settings: AdapterSettings, bus: Bus
) -> None:
    trace_id = secrets.token_hex(16)
    cmd = command("a slow lighthouse [sim:slow=1500]")
    received: asyncio.Queue[tuple[PredictionEvent, dict[str, str]]] = asyncio.Queue()

    async def on_msg(msg: Any) -> None:
        event = Envelope.model_validate_json(msg.data).open(PredictionEvent)
        received.put_nowait((event, dict(msg.headers or {})))

    sub = await bus.nc.subscribe(PREDICTION_UPDATED.subject(generation_id=cmd.generation_id), cb=on_msg)
    try:
        async with running(create_app(settings)):
            token = otel_context.attach(propagate.extract({"traceparent": f"00-{trace_id}-{'1' * 16}-01"}))
            try:
                await bus.publish(PREDICT, cmd)
            finally:
                otel_context.detach(token)
            started, started_headers = await asyncio.wait_for(received.get(), 10)
            assert started.status is PredictionStatus.STARTED
        # Down while the prediction runs; the next process resumes it from the table.
        async with running(create_app(settings)):
            done, done_headers = await asyncio.wait_for(received.get(), 10)
    finally:
        await sub.unsubscribe()

    assert done.status is PredictionStatus.SUCCEEDED
    assert started_headers["traceparent"].split("-")[1] == trace_id
    assert done_headers["traceparent"].split("-")[1] == trace_id
