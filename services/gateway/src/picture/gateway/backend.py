"""The gateway's view of the other services: NATS queries whose typed errors become the
gateway's problems (:meth:`Backend.ask`, the one way routes query another service).

Models are cached briefly (they change rarely and every submit needs one).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TypeVar

from picture.common import contracts as c
from picture.common.ids import derived_id
from picture.common.messaging import Bus, QueryFailed
from picture.gateway.errors import InvalidField, NotFound, problem_for
from picture.gateway.read_model import GenerationViews

Req = TypeVar("Req", bound=c.Message)
Rep = TypeVar("Rep", bound=c.Message)

log = logging.getLogger(__name__)

SOURCE_URL_SECONDS = 24 * 3600


class Backend:
    def __init__(self, bus: Bus, model_cache_seconds: float, views: GenerationViews) -> None:
        self.bus = bus
        self.views = views
        self._model_ttl = model_cache_seconds
        self._models: dict[str, tuple[float, c.ModelSpec]] = {}

    async def ask(self, query: c.Query[Req, Rep], message: Req, what: str) -> Rep:
        """The reply to ``query``; a failed query raises the gateway's problem for it
        (:func:`picture.gateway.errors.problem_for`; ``what`` names the resource asked for)."""
        try:
            return await self.bus.request(query, message)
        except QueryFailed as exc:
            raise problem_for(exc, what) from exc

    async def model(self, name: str) -> c.ModelSpec:
        cached = self._models.get(name)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            reply = await self.ask(c.GET_MODEL, c.GetModelRequest(name=name), "model")
        except NotFound as exc:
            raise InvalidField("model", f"unknown model {name!r}; see GET /v1/models") from exc
        self._models[name] = (time.monotonic() + self._model_ttl, reply.model)
        return reply.model

    def forget_model(self, name: str) -> None:
        """Drop a model from this replica's cache (an admin just changed it)."""
        self._models.pop(name, None)

    async def models(self) -> tuple[c.ModelSpec, ...]:
        reply = await self.ask(c.LIST_MODELS, c.ListModelsRequest(), "models")
        return reply.models

    async def generation(self, generation_id: uuid.UUID, user_id: uuid.UUID) -> c.GenerationView:
        """The newest view of one of the user's generations (404 otherwise): the read model's;
        the orchestrator's for one the read model does not hold (older than it) and for one
        that waits for a slot (its place in the queue moves with the others')."""
        stored = await self.views.get(generation_id)
        if stored is not None and stored.user_id != user_id:
            raise NotFound("generation")
        if stored is not None and stored.view.queue_position is None:
            return stored.view
        live = await self.orchestrators_view(generation_id, user_id)
        if stored is None:
            await self.views.apply([live])
            return live
        return live if live.version >= stored.version else stored.view

    async def orchestrators_view(self, generation_id: uuid.UUID, user_id: uuid.UUID) -> c.GenerationView:
        reply = await self.ask(
            c.GET_GENERATION,
            c.GetGenerationRequest(generation_id=generation_id, user_id=user_id),
            "generation",
        )
        return reply.generation

    async def batch(
        self,
        batch_id: uuid.UUID,
        user_id: uuid.UUID,
        query: c.Query[c.BatchRequest, c.BatchReply] = c.GET_BATCH,
    ) -> c.BatchView:
        """A batch (``query``: get, cancel, delete; another user's answers 404)."""
        reply = await self.ask(query, c.BatchRequest(batch_id=batch_id, user_id=user_id), "batch")
        return reply.batch

    async def image(self, image_id: uuid.UUID, viewer_id: uuid.UUID | None) -> c.ImageView:
        reply = await self.ask(
            c.GET_IMAGE, c.GetImageRequest(image_id=image_id, viewer_id=viewer_id), "image"
        )
        return reply.image

    async def source_image_url(self, image_id: uuid.UUID, user_id: uuid.UUID) -> str:
        """A signed URL of one of the user's own images, for image-to-image.

        Valid for a day: retries of the generation may run hours later. Not the user's (or not
        there): 422 on the field, never a hint that another user's image exists.
        """
        try:
            image = await self.image(image_id, user_id)
        except NotFound as exc:
            raise InvalidField("source_image_id", "no such image of yours") from exc
        if image.user_id != user_id:
            raise InvalidField("source_image_id", "no such image of yours")
        resolved = await self.ask(
            c.RESOLVE_OBJECT,
            c.ResolveObjectRequest(key=image.content_key, expires_in_seconds=SOURCE_URL_SECONDS),
            "source image",
        )
        return resolved.url

    async def template_used(
        self, template_id: uuid.UUID, generation_id: uuid.UUID, user_id: uuid.UUID
    ) -> None:
        """Count a template's use; the catalog counts once per generation.

        Best effort after the generation was accepted: a failure here must not turn an accepted
        generation into an error answer (the client would submit it again).
        """
        try:
            await self.bus.publish(
                c.TEMPLATE_USED,
                c.TemplateUsedCommand(template_id=template_id, generation_id=generation_id, user_id=user_id),
                message_id=derived_id("template.used", template_id, generation_id),
            )
        except Exception as exc:
            log.warning("template use of %s not counted: %s", template_id, exc)

    async def image_downloaded(self, image_id: uuid.UUID) -> None:
        """Count a download (best effort: the bytes are already on their way)."""
        try:
            await self.bus.publish(c.IMAGE_DOWNLOADED, c.ImageDownloadedCommand(image_id=image_id))
        except Exception as exc:
            log.warning("download of %s not counted: %s", image_id, exc)

    async def resolve_object(self, key: str) -> c.ResolvedObject:
        return await self.ask(c.RESOLVE_OBJECT, c.ResolveObjectRequest(key=key), "image")
