"""FastAPI dependencies: the per-process resources, as annotated types.

All ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per
dependency per request for what is an attribute read.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.gateway.backend import Backend
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


BackendDep = Annotated[Backend, Depends(_backend)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
HttpDep = Annotated[httpx.AsyncClient, Depends(_http)]
