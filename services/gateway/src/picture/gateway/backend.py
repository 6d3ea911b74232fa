"""The gateway's view of the other services: NATS queries with typed errors mapped to HTTP.

Models are cached briefly (they change rarely and every submit needs one).
"""

from __future__ import annotations

import time
import uuid
from typing import NoReturn

from picture.common import contracts as c
from picture.common.messaging import Bus, QueryFailed
from picture.gateway.errors import Conflict, InvalidField, NotFound, Unavailable


def _raise(exc: QueryFailed, what: str) -> NoReturn:
    if exc.code is c.QueryErrorCode.NOT_FOUND:
        raise NotFound(what) from exc
    if exc.code is c.QueryErrorCode.INVALID:
        raise InvalidField(exc.field or "body", exc.message) from exc
    if exc.code is c.QueryErrorCode.CONFLICT:
        raise Conflict(exc.message) from exc
    raise Unavailable(f"{what}: {exc.message}") from exc


class Backend:
    def __init__(self, bus: Bus, model_cache_seconds: float) -> None:
        self.bus = bus
        self._model_ttl = model_cache_seconds
        self._models: dict[str, tuple[float, c.ModelSpec]] = {}

    async def model(self, name: str) -> c.ModelSpec:
        cached = self._models.get(name)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            reply = await self.bus.request(c.GET_MODEL, c.GetModelRequest(name=name))
        except QueryFailed as exc:
            if exc.code is c.QueryErrorCode.NOT_FOUND:
                raise InvalidField("model", f"unknown model {name!r}; see GET /v1/models") from exc
            _raise(exc, "model")
        self._models[name] = (time.monotonic() + self._model_ttl, reply.model)
        return reply.model

    async def models(self) -> tuple[c.ModelSpec, ...]:
        try:
            reply = await self.bus.request(c.LIST_MODELS, c.ListModelsRequest())
        except QueryFailed as exc:
            _raise(exc, "models")
        return reply.models

    async def create_generation(self, request: c.CreateGenerationRequest) -> c.GenerationView:
        try:
            reply = await self.bus.request(c.CREATE_GENERATION, request)
        except QueryFailed as exc:
            _raise(exc, "generation")
        return reply.generation

    async def generation(self, generation_id: uuid.UUID, user_id: uuid.UUID) -> c.GenerationView:
        try:
            reply = await self.bus.request(
                c.GET_GENERATION, c.GetGenerationRequest(generation_id=generation_id, user_id=user_id)
            )
        except QueryFailed as exc:
            _raise(exc, "generation")
        return reply.generation

    async def image(self, image_id: uuid.UUID, viewer_id: uuid.UUID | None) -> c.ImageView:
        try:
            reply = await self.bus.request(
                c.GET_IMAGE, c.GetImageRequest(image_id=image_id, viewer_id=viewer_id)
            )
        except QueryFailed as exc:
            _raise(exc, "image")
        return reply.image

    async def resolve_object(self, key: str) -> c.ResolvedObject:
        try:
            return await self.bus.request(c.RESOLVE_OBJECT, c.ResolveObjectRequest(key=key))
        except QueryFailed as exc:
            _raise(exc, "image")
