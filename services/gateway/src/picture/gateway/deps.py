"""FastAPI dependencies: the per-process state (:class:`GatewayState`) and its parts, and the
administrator, as annotated types.

All ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per
dependency per request for what is an attribute read.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.gateway.acceptance import Acceptance
from picture.gateway.auth import CurrentUser, Principal
from picture.gateway.backend import Backend
from picture.gateway.errors import Forbidden
from picture.gateway.limits import Limiter
from picture.gateway.live import Hub
from picture.gateway.read_model import GenerationViews
from picture.gateway.settings import GatewaySettings
from picture.gateway.state import GatewayState, gateway_state


async def _state(request: Request) -> GatewayState:
    return gateway_state(request)


StateDep = Annotated[GatewayState, Depends(_state)]


async def _backend(state: StateDep) -> Backend:
    return state.backend


async def _settings(state: StateDep) -> GatewaySettings:
    return state.settings


async def _engine(state: StateDep) -> AsyncEngine:
    return state.engine


async def _http(state: StateDep) -> httpx.AsyncClient:
    return state.http


async def _acceptance(state: StateDep) -> Acceptance:
    return state.acceptance


async def _views(state: StateDep) -> GenerationViews:
    return state.views


async def _hub(state: StateDep) -> Hub:
    return state.hub


async def _limiter(state: StateDep) -> Limiter:
    return state.limiter


async def _admin(user: CurrentUser, state: StateDep) -> Principal:
    """Admin rights as the gateway grants them (PICTURE_ADMIN_USER_IDS or gateway.users.is_admin,
    through its limiter), never from token claims a user can edit (user_metadata)."""
    if not await state.limiter.is_admin(user.user_id):
        raise Forbidden("administrators only")
    return user


AdminUser = Annotated[Principal, Depends(_admin)]
AcceptanceDep = Annotated[Acceptance, Depends(_acceptance)]
ViewsDep = Annotated[GenerationViews, Depends(_views)]
HubDep = Annotated[Hub, Depends(_hub)]
BackendDep = Annotated[Backend, Depends(_backend)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
HttpDep = Annotated[httpx.AsyncClient, Depends(_http)]
LimiterDep = Annotated[Limiter, Depends(_limiter)]
