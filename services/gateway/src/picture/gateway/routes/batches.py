"""Batches: POST /v1/batches (2-10 prompts, or one prompt with 1-5 seeds), GET (one, list),
POST .../cancel, POST .../retry-failed, DELETE."""

from __future__ import annotations

import random
import uuid
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from picture.common import contracts as c
from picture.common.ids import derived_id, uuid7
from picture.common.text import Storable
from picture.gateway import idempotency
from picture.gateway.auth import CurrentUser
from picture.gateway.deps import BackendDep, EngineDep, SettingsDep
from picture.gateway.errors import InvalidField
from picture.gateway.quota import ChargeDep
from picture.gateway.routes.generations import PROBLEM_RESPONSES, SUBMIT_RESPONSES
from picture.gateway.schemas import MAX_SEED, GenerationCreate, ImageOut
from picture.gateway.validation import apply_model

router = APIRouter(prefix="/v1/batches", tags=["batches"])

RETRYABLE = frozenset({c.GenerationStatus.FAILED, c.GenerationStatus.CANCELLED})


class SharedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9.\-]*$"), Storable]
    negative_prompt: Annotated[str, Field(max_length=2000), Storable] | None = None
    width: int | None = Field(default=None, ge=64, le=4096)
    height: int | None = Field(default=None, ge=64, le=4096)
    steps: int | None = Field(default=None, ge=1, le=150)
    guidance_scale: float | None = Field(default=None, ge=0, le=50)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="Batch of prompts only.")


class BatchCreate(BaseModel):
    """Either ``prompts`` (2-10, a batch) or ``prompt`` with ``seeds`` (1-5) or ``count`` (1-5)
    (a multi-generation: the same prompt, several seeds)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "prompts": ["a red fox", "a blue whale"],
                    "shared_settings": {"model": "flux-schnell", "width": 512, "height": 512},
                    "batch_name": "animals",
                },
                {"prompt": "a lighthouse", "seeds": [1, 2, 3], "shared_settings": {"model": "flux-schnell"}},
            ]
        },
    )

    prompts: list[Annotated[str, Field(min_length=1, max_length=2000), Storable]] | None = Field(
        default=None, min_length=2, max_length=10
    )
    prompt: Annotated[str, Field(min_length=1, max_length=2000), Storable] | None = None
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] | None = Field(
        default=None, min_length=1, max_length=5
    )
    count: int | None = Field(default=None, ge=1, le=5)
    shared_settings: SharedSettings
    batch_name: Annotated[str, Field(max_length=200), Storable] | None = None
    reuse: bool = True

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        if (self.prompts is None) == (self.prompt is None):
            raise ValueError("give either prompts (a batch) or prompt with seeds or count")
        if self.prompt is not None and (self.seeds is None) == (self.count is None):
            raise ValueError("with prompt, give seeds or count")
        if self.prompts is not None and (self.seeds is not None or self.count is not None):
            raise ValueError("seeds and count go with a single prompt")
        return self


class BatchItemOut(BaseModel):
    generation_id: uuid.UUID
    index: int
    prompt: str
    seed: int | None
    status: c.GenerationStatus
    progress: float
    error_message: str | None
    image: ImageOut | None


class BatchOut(BaseModel):
    id: uuid.UUID
    name: str | None
    kind: Literal["batch", "multi"]
    model: str
    status: c.BatchStatus
    total: int
    completed: int
    failed: int
    pending: int
    processing: int
    created_at: Any
    items: list[BatchItemOut]

    @classmethod
    def build(cls, view: c.BatchView, base_url: str) -> BatchOut:
        return cls(
            id=view.id,
            name=view.name,
            kind=view.kind,
            model=view.model,
            status=view.status,
            total=view.total,
            completed=view.completed,
            failed=view.failed,
            pending=view.pending,
            processing=view.processing,
            created_at=view.created_at,
            items=[
                BatchItemOut(
                    generation_id=i.generation_id,
                    index=i.index,
                    prompt=i.prompt,
                    seed=i.seed,
                    status=i.status,
                    progress=i.progress,
                    error_message=i.error_message,
                    image=ImageOut.build(i.image, base_url) if i.image else None,
                )
                for i in view.items
            ],
        )


class BatchPage(BaseModel):
    data: list[BatchOut]
    next_cursor: str | None


@router.post(
    "", status_code=202, response_model=BatchOut, responses=SUBMIT_RESPONSES, summary="Submit a batch"
)
async def create_batch(
    body: BatchCreate,
    user: CurrentUser,
    backend: BackendDep,
    engine: EngineDep,
    settings: SettingsDep,
    charge: ChargeDep,
    idempotency_key: Annotated[str | None, Header(max_length=255), Storable] = None,
) -> BatchOut:
    """With an Idempotency-Key, a replay answers with the batch the key created (its items'
    ids derive from the batch id, so nothing is charged or created twice); the same key with
    another body answers 409."""
    batch_id = await idempotency.bind(engine, user.user_id, idempotency_key, "batch", body)
    shared = body.shared_settings
    model = await backend.model(shared.model)
    if body.prompts is not None:
        pairs = [(p, shared.seed) for p in body.prompts]
        kind: Literal["batch", "multi"] = "batch"
    else:
        assert body.prompt is not None
        rng = random.SystemRandom()
        seeds = body.seeds or [rng.randint(0, MAX_SEED) for _ in range(body.count or 1)]
        pairs = [(body.prompt, s) for s in seeds]
        kind = "multi"
    items = []
    for index, (prompt, seed) in enumerate(pairs):
        one = GenerationCreate.model_validate(
            {**shared.model_dump(exclude={"seed"}), "prompt": prompt, "seed": seed}
        )
        try:
            parameters = apply_model(model, one)
        except InvalidField as exc:  # name the input as this body spells it
            field = f"prompts[{index}]" if exc.field == "prompt" else f"shared_settings.{exc.field}"
            raise InvalidField(field, exc.detail or "invalid") from exc
        item_id = derived_id("batch-item", batch_id, index) if idempotency_key else uuid7()
        items.append(c.BatchItemSpec(generation_id=item_id, parameters=parameters))
    async with charge([i.generation_id for i in items]):  # quotas per item (gateway limits)
        reply = await backend.ask(
            c.CREATE_BATCH,
            c.CreateBatchRequest(
                batch_id=batch_id,
                user_id=user.user_id,
                name=body.batch_name,
                kind=kind,
                model=model,
                items=tuple(items),
                reuse=body.reuse,
            ),
            "batch",
        )
    return BatchOut.build(reply.batch, settings.public_url)


@router.get("", response_model=BatchPage, responses=PROBLEM_RESPONSES, summary="Your batches, newest first")
async def list_batches(
    user: CurrentUser,
    backend: BackendDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200), Storable] = None,
) -> BatchPage:
    reply = await backend.ask(
        c.LIST_BATCHES, c.ListBatchesRequest(user_id=user.user_id, limit=limit, cursor=cursor), "batches"
    )
    return BatchPage(
        data=[BatchOut.build(b, settings.public_url) for b in reply.batches], next_cursor=reply.next_cursor
    )


@router.get("/{batch_id}", response_model=BatchOut, responses=PROBLEM_RESPONSES, summary="A batch's progress")
async def get_batch(
    batch_id: uuid.UUID, user: CurrentUser, backend: BackendDep, settings: SettingsDep
) -> BatchOut:
    view = await backend.batch(batch_id, user.user_id)
    return BatchOut.build(view, settings.public_url)


@router.post(
    "/{batch_id}/cancel",
    response_model=BatchOut,
    responses=PROBLEM_RESPONSES,
    summary="Cancel the items not finished yet",
)
async def cancel_batch(
    batch_id: uuid.UUID, user: CurrentUser, backend: BackendDep, settings: SettingsDep
) -> BatchOut:
    view = await backend.batch(batch_id, user.user_id, c.CANCEL_BATCH)
    return BatchOut.build(view, settings.public_url)


@router.post(
    "/{batch_id}/retry-failed",
    response_model=BatchOut,
    responses=SUBMIT_RESPONSES,
    summary="Run the failed or cancelled items again",
)
async def retry_failed(
    batch_id: uuid.UUID, user: CurrentUser, backend: BackendDep, settings: SettingsDep, charge: ChargeDep
) -> BatchOut:
    """Each retried item is a new generation and is charged like one (its failed predecessor
    was refunded); 429 when the quota has no room for them."""
    current = await backend.batch(batch_id, user.user_id)
    retryable = [i for i in current.items if i.status in RETRYABLE]
    if not retryable:
        return BatchOut.build(current, settings.public_url)
    new_ids = tuple(uuid7() for _ in retryable)
    async with charge(list(new_ids)):
        reply = await backend.ask(
            c.RETRY_BATCH,
            c.BatchRequest(batch_id=batch_id, user_id=user.user_id, new_generation_ids=new_ids),
            "batch",
        )
    used = {i.generation_id for i in reply.batch.items}
    unused = [g for g in new_ids if g not in used]  # items that changed since we looked
    if unused:
        await charge.limiter.undo(unused)
    return BatchOut.build(reply.batch, settings.public_url)


@router.delete(
    "/{batch_id}",
    response_model=BatchOut,
    responses=PROBLEM_RESPONSES,
    summary="Cancel what is not finished and remove the batch (its images remain)",
)
async def delete_batch(
    batch_id: uuid.UUID, user: CurrentUser, backend: BackendDep, settings: SettingsDep
) -> BatchOut:
    view = await backend.batch(batch_id, user.user_id, c.DELETE_BATCH)
    return BatchOut.build(view, settings.public_url)
