"""``POST /functions/v1/generate-image``: the old product's ``generate-image`` function, for app
versions that cannot be updated at once. Deprecated: new clients use ``POST /v1/generations``.

It takes the old body (prompt, model_id, model_version, width, height, num_inference_steps,
guidance_scale, generation_id, seed, source_image_url, strength), runs it through the same
acceptance as ``POST /v1/generations`` (quotas, model rules, idempotent by ``generation_id``)
and waits for the result as the old function did, up to the server's wait limit. The answer
has the old shape and the old statuses: cancelled is shown as failed "Cancelled by user".

- completed: 200 ``{success: true, generation_id, status, image_url, image: {...}, ...}``;
- failed or cancelled: 400 ``{success: false, error, generation_id, status: "failed"}``, as
  the old function answered a failed generation;
- still running when the wait ends: 202 with the old status (the client may poll
  ``GET /v1/generations/{generation_id}``);
- a refused request keeps its proper status (401, 422, 429, 503; the old function said 400 to
  everything) with the old ``{success: false, error}`` body.

What the old product got wrong is not copied: seed 0 and guidance 0 are values; the model is
matched exactly (name, or Replicate id; never a substring); ``source_image_url`` must name one
of the user's own images (``.../v1/images/{id}/...``): no URL is fetched on a client's word.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from picture.common import contracts as c
from picture.common.ids import uuid7
from picture.common.messaging import QueryFailed
from picture.common.problems import ProblemError
from picture.common.text import Storable
from picture.gateway.auth import CurrentUser
from picture.gateway.backend import Backend
from picture.gateway.deps import AcceptanceDep, BackendDep, HubDep, SettingsDep
from picture.gateway.errors import InvalidField, Unavailable
from picture.gateway.live import stream_position, wait_terminal
from picture.gateway.schemas import GenerationCreate, ImageOut
from picture.gateway.validation import apply_model

COMPAT_REQUESTS = Counter(
    "picture_gateway_compat_requests_total",
    "Calls of the deprecated old-client endpoints, by endpoint and outcome "
    "(completed, failed, pending, refused).",
    ["endpoint", "outcome"],
)
ENDPOINT = "generate-image"
CANCELLED_MESSAGE = "Cancelled by user"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

OldStatus = Literal["pending", "queued", "processing", "downloading", "completed", "failed"]

router = APIRouter(tags=["compatibility"])

# Refused requests: the old body when this endpoint refuses; a problem document when the
# request is refused before it (authentication, a malformed body, the rate limit).
REFUSALS = {
    401: "Missing or invalid access token",
    422: "Invalid request; `error` (or the problem's `detail`) says why",
    429: "A quota or rate limit; see Retry-After",
    503: "A backing service is unavailable; retry",
}


def _refusal(description: str) -> dict[str, Any]:
    return {
        "model": OldGenerateImageReply,
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


class OldGenerateImage(BaseModel):
    """The body the old app sent to ``generate-image`` (unknown fields are ignored, as there)."""

    model_config = ConfigDict(extra="ignore")

    prompt: Annotated[str, Field(min_length=1, max_length=2000), Storable]
    negative_prompt: Annotated[str, Field(max_length=2000), Storable] | None = None
    model_id: (
        Annotated[str, Field(max_length=200, description="Model name or Replicate id."), Storable] | None
    ) = None
    model_version: Annotated[str, Field(max_length=200), Storable] | None = None
    width: int | None = Field(default=None, ge=64, le=4096)
    height: int | None = Field(default=None, ge=64, le=4096)
    num_inference_steps: int | None = Field(default=None, ge=1, le=150)
    guidance_scale: float | None = Field(default=None, ge=0, le=50)
    generation_id: uuid.UUID | None = None
    seed: int | None = Field(default=None, ge=0)
    source_image_url: Annotated[str, Field(max_length=2048), Storable] | None = None
    strength: float | None = Field(default=None, ge=0, le=1)


class OldImage(BaseModel):
    id: uuid.UUID
    url: str
    thumbnail_url: str | None
    width: int
    height: int
    format: str
    file_size: int


class OldGenerateImageReply(BaseModel):
    """What the old function answered."""

    success: bool
    generation_id: uuid.UUID | None = None
    status: OldStatus | None = None
    image_url: str | None = None
    image: OldImage | None = None
    error: str | None = None
    model: str | None = None
    seed: int | None = None
    generation_time_seconds: float | None = None


def old_status(status: c.GenerationStatus) -> OldStatus:
    """The status an old client knows: cancelled did not exist (it was failed)."""
    if status is c.GenerationStatus.CANCELLED:
        return "failed"
    value: OldStatus = status.value  # type: ignore[assignment]  # every other status is an old one
    return value


def old_reply(view: c.GenerationView, base_url: str) -> tuple[int, OldGenerateImageReply]:
    """(HTTP status, body) of the old function for the generation's current state."""
    status = old_status(view.status)
    common: dict[str, Any] = {"generation_id": view.id, "status": status, "model": view.model}
    common["seed"] = view.parameters.seed
    if view.status is c.GenerationStatus.COMPLETED and view.image is not None:
        image = ImageOut.build(view.image, base_url)
        seconds = view.total_time_ms / 1000 if view.total_time_ms is not None else None
        return 200, OldGenerateImageReply(
            success=True,
            image_url=image.url,
            image=OldImage(**image.model_dump()),
            generation_time_seconds=seconds,
            **common,
        )
    if view.status is c.GenerationStatus.CANCELLED:
        return 400, OldGenerateImageReply(success=False, error=CANCELLED_MESSAGE, **common)
    if view.status.is_terminal:
        return 400, OldGenerateImageReply(
            success=False, error=view.error_message or "Generation failed", **common
        )
    return 202, OldGenerateImageReply(success=True, **common)


async def resolve_model(backend: Backend, model_id: str | None, version: str | None) -> str:
    """The model's name: by exact name, else by Replicate id (and version when given); the
    default model when the old client sent none."""
    try:
        models = (await backend.bus.request(c.LIST_MODELS, c.ListModelsRequest())).models
    except QueryFailed as exc:
        raise Unavailable("the model list is unavailable; try again") from exc
    if model_id is None:
        default = next((m for m in models if m.is_default), models[0] if models else None)
        if default is None:
            raise InvalidField("model_id", "no model is available")
        return default.name
    for model in models:
        if model.name == model_id:
            return model.name
    for model in models:
        if model.replicate_id == model_id and (version is None or model.version in (None, version)):
            return model.name
    raise InvalidField("model_id", f"unknown model {model_id!r}; see GET /v1/models")


def source_image_id(url: str | None) -> uuid.UUID | None:
    """The image a ``source_image_url`` names (the last uuid in it); 422 when it names none."""
    if url is None:
        return None
    found = _UUID.findall(url)
    if not found:
        raise InvalidField("source_image_url", "name one of your images (upload it with POST /v1/uploads)")
    return uuid.UUID(found[-1])


def generation_create(model: c.ModelSpec, body: OldGenerateImage) -> GenerationCreate:
    """The new request of an old body. The old app sent every field to every model and the old
    function built each model's input from what it takes: a field the model does not take is
    dropped here too, not refused (an app that cannot be updated cannot stop sending it)."""
    source = source_image_id(body.source_image_url) if model.supports_img2img else None
    return GenerationCreate(
        model=model.name,
        prompt=body.prompt,
        negative_prompt=body.negative_prompt if model.supports_negative_prompt else None,
        width=body.width,
        height=body.height,
        steps=body.num_inference_steps if model.supports_steps else None,
        guidance_scale=body.guidance_scale if model.supports_guidance else None,
        seed=body.seed if model.supports_seed else None,
        source_image_id=source,
        strength=body.strength if source is not None and model.supports_strength else None,
    )


def _refused(exc: ProblemError) -> JSONResponse:
    COMPAT_REQUESTS.labels(ENDPOINT, "refused").inc()
    body = OldGenerateImageReply(success=False, error=exc.detail or exc.title)
    return JSONResponse(body.model_dump(mode="json"), status_code=exc.status, headers=exc.headers)


@router.post(
    "/functions/v1/generate-image",
    deprecated=True,
    response_model=OldGenerateImageReply,
    responses={
        202: {"model": OldGenerateImageReply, "description": "Still running when the wait ended"},
        400: {"model": OldGenerateImageReply, "description": "The generation failed or was cancelled"},
        404: {"model": OldGenerateImageReply, "description": "generation_id names someone else's generation"},
        **{status: _refusal(why) for status, why in REFUSALS.items()},
    },
    summary="Old clients' generate-image (deprecated: use POST /v1/generations)",
)
async def generate_image(
    body: Annotated[OldGenerateImage, Body()],
    user: CurrentUser,
    backend: BackendDep,
    acceptance: AcceptanceDep,
    settings: SettingsDep,
    hub: HubDep,
) -> JSONResponse:
    try:
        model = await backend.model(await resolve_model(backend, body.model_id, body.model_version))
        request = generation_create(model, body)
        parameters = apply_model(model, request)
        if request.source_image_id is not None:
            parameters = parameters.model_copy(
                update={
                    "source_image_url": await backend.source_image_url(request.source_image_id, user.user_id)
                }
            )
        generation_id = body.generation_id or uuid7()
        position = await stream_position(hub, backend.bus.js)
        accepted = await acceptance.accept(user, generation_id, model, parameters)
        view = (
            accepted.view if accepted is not None else await backend.generation(generation_id, user.user_id)
        )
    except ProblemError as exc:
        return _refused(exc)
    view = await wait_terminal(hub, backend.bus.js, view, settings.max_prefer_wait_seconds, position)
    status, reply = old_reply(view, settings.public_url)
    outcome = "completed" if status == 200 else "failed" if status == 400 else "pending"
    COMPAT_REQUESTS.labels(ENDPOINT, outcome).inc()
    return JSONResponse(
        reply.model_dump(mode="json"), status_code=status, headers={"Deprecation": "true", "Link": _SUCCESSOR}
    )


_SUCCESSOR = '</v1/generations>; rel="successor-version"'
