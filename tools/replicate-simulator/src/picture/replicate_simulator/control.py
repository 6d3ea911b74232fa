"""Test control API, mounted under ``/_control`` (no authentication; for tests only).

- ``GET /_control/config`` -> current config::

      {"latency_ms": 800, "start_delay_ms": 100, "jitter": 0.2, "failure_rate": 0.0,
       "paused": false, "force_status": null, "force_count": 0, "force_timeout_ms": 0,
       "drop_webhooks": false}

- ``PUT /_control/config`` with any subset of those fields -> the new config.

  * ``latency_ms``, ``start_delay_ms``, ``jitter``, ``failure_rate``: apply to predictions
    created afterwards.
  * ``paused``: while true, predictions stay ``starting``.
  * ``force_status`` (e.g. 429, 500, 503) with ``force_count`` N: the next N ``/v1`` requests
    (after authentication) answer that status; 429 uses Replicate's throttle body and
    ``ratelimit-remaining``/``ratelimit-reset`` headers (plus ``Retry-After`` when
    ``PICTURE_SIMULATOR_RETRY_AFTER_SECONDS`` is set). Without ``force_count``, N = 1.
  * ``force_timeout_ms`` with ``force_count`` N: the next N create requests sleep that long
    before answering; the prediction is created anyway (a client-side timeout after the server
    accepted the request).
  * ``drop_webhooks``: webhook events are not delivered.

- ``POST /_control/reset``: cancel and forget all predictions and files, zero the counters,
  restore the config from the settings (and re-seed the random generator).
- ``GET /_control/stats`` -> ``{requests, creates, gets, cancels, lists, webhooks_sent,
  webhooks_failed, in_flight, by_status: {starting, processing, succeeded, failed, canceled,
  aborted}}``; ``requests`` counts every ``/v1`` request that arrived (forced errors included),
  ``webhooks_sent`` successful deliveries, ``webhooks_failed`` failed attempts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from picture.replicate_simulator.models import ControlConfig, ControlConfigUpdate
from picture.replicate_simulator.state import SimulatorState, get_state
from picture.replicate_simulator.store import TERMINAL_STATUSES

State = Annotated[SimulatorState, Depends(get_state)]
router = APIRouter(prefix="/_control", tags=["control"])


@router.get("/config")
async def get_config(state: State) -> ControlConfig:
    """Current runtime config."""
    return state.control.config


@router.put("/config")
async def put_config(change: ControlConfigUpdate, state: State) -> ControlConfig:
    """Partially update the runtime config."""
    return state.control.update(change)


@router.post("/reset")
async def reset(state: State) -> dict[str, bool]:
    """Forget everything and restore the configured behaviour."""
    await state.store.reset()
    state.files.clear()
    state.control.reset()
    for name in ("requests", "creates", "gets", "cancels", "lists", "webhooks_sent", "webhooks_failed"):
        setattr(state.stats, name, 0)
    return {"ok": True}


@router.get("/stats")
async def stats(state: State) -> dict[str, Any]:
    """Request, webhook and status counters."""
    by_status = state.store.status_counts()
    in_flight = sum(n for status, n in by_status.items() if status not in TERMINAL_STATUSES)
    return state.stats.as_dict() | {"in_flight": in_flight, "by_status": by_status}
