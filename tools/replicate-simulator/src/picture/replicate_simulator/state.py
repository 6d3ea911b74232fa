"""The per-app bundle of live resources, created by the lifespan and read by the routes."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from picture.replicate_simulator.files import FileStore
from picture.replicate_simulator.runtime import RuntimeControl, Stats
from picture.replicate_simulator.settings import SimulatorSettings
from picture.replicate_simulator.store import PredictionStore


@dataclass(slots=True)
class SimulatorState:
    """Everything the routes need; lives in ``app.state.simulator``."""

    settings: SimulatorSettings
    control: RuntimeControl
    stats: Stats
    files: FileStore
    store: PredictionStore


def get_state(request: Request) -> SimulatorState:
    """FastAPI dependency returning the live :class:`SimulatorState`."""
    state = getattr(request.app.state, "simulator", None)
    if not isinstance(state, SimulatorState):
        raise RuntimeError("simulator is not running (lifespan not started)")
    return state
