"""FastAPI dependencies: the per-process resources, as annotated types.

All ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per
dependency per request for what is an attribute read.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.gateway.acceptance import Acceptance
from picture.gateway.backend import Backend
from picture.gateway.live import Hub
from picture.gateway.read_model import GenerationViews
from picture.gateway.settings import GatewaySettings


async def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


async def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def _http(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.http
    return client


async def _acceptance(request: Request) -> Acceptance:
    acceptance: Acceptance = request.app.state.acceptance
    return acceptance


async def _views(request: Request) -> GenerationViews:
    views: GenerationViews = request.app.state.views
    return views


async def _hub(request: Request) -> Hub | None:
    hub: Hub | None = getattr(request.app.state, "hub", None)
    return hub


AcceptanceDep = Annotated[Acceptance, Depends(_acceptance)]
ViewsDep = Annotated[GenerationViews, Depends(_views)]
HubDep = Annotated[Hub | None, Depends(_hub)]
BackendDep = Annotated[Backend, Depends(_backend)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
HttpDep = Annotated[httpx.AsyncClient, Depends(_http)]
