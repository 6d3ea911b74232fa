"""The gateway's per-process state, typed: built once in the app's lifespan and read through
:func:`gateway_state` (by the FastAPI dependencies in :mod:`picture.gateway.deps`, and by the
code that runs outside them: authentication, the WebSocket).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from picture.gateway.backend import Backend
from picture.gateway.limits import Limiter
from picture.gateway.live import Hub
from picture.gateway.read_model import GenerationViews
from picture.gateway.settings import GatewaySettings

if TYPE_CHECKING:  # both import picture.gateway.auth, which reads the state
    from picture.gateway.acceptance import Acceptance
    from picture.gateway.auth import TokenVerifier


@dataclass(frozen=True, eq=False)
class GatewayState:
    settings: GatewaySettings
    verifier: TokenVerifier
    engine: AsyncEngine
    http: httpx.AsyncClient
    backend: Backend
    limiter: Limiter
    views: GenerationViews
    acceptance: Acceptance
    hub: Hub
    # Event streams open on this replica, per user (bounded by settings.max_streams_per_user).
    open_streams: dict[uuid.UUID, int] = field(default_factory=dict)


def gateway_state(connection: HTTPConnection) -> GatewayState:
    """The state of the app serving ``connection`` (a request or a WebSocket)."""
    state: GatewayState | None = getattr(connection.app.state, "gateway", None)
    if state is None:
        raise RuntimeError("the gateway's lifespan has not run: no state")
    return state
