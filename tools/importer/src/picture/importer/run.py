"""The import itself: the plan sent to the services, each through its own write path.

Order: profiles, tags, prompt templates, batches, per-user limits (the gateway's admin API),
then each generation (its image stored by media, recorded by the catalog, then the generation
written by the orchestrator), then images without a generation (old uploads). Every write is
idempotent by the record's id and a record found already imported is counted as such, so a
second run writes nothing and a run stopped midway is finished by the next one. A service that
is down stops the run (start it again later); a record a service refuses is skipped with its
reason.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import httpx

from picture.common import contracts as c
from picture.common.messaging import Bus, QueryFailed
from picture.importer.plan import PlannedGeneration, PlannedImage, PlannedLimits, Skip, build_plan
from picture.importer.report import Report
from picture.importer.source import ObjectSource


class RefusedError(Exception):
    """A service refused a record (bad value): the record is skipped with this reason."""


class Target(Protocol):
    """Where records go: the new services (or a fake in tests)."""

    async def models(self) -> dict[str, c.ModelSpec]: ...

    async def send(self, query: c.Query[Any, c.ImportReply], request: c.Message) -> bool:
        """True: written now; False: it was there already. Raises RefusedError."""
        ...

    async def image_exists(self, image_id: uuid.UUID, user_id: uuid.UUID) -> bool: ...

    async def generation_exists(self, generation_id: uuid.UUID, user_id: uuid.UUID) -> bool: ...

    async def store(
        self, user_id: uuid.UUID, generation_id: uuid.UUID | None, image_id: uuid.UUID, data: bytes
    ) -> tuple[c.StoredObject, ...]:
        """Media stores the bytes (WebP, thumbnail, blurhash, sha256). Raises RefusedError."""
        ...

    async def set_limits(self, limits: PlannedLimits) -> bool | None:
        """The gateway sets the user's own limits; True: changed, False: they were so already,
        None: no way to the gateway was given (not imported)."""
        ...


@dataclass
class Services:
    """The new services: queries over NATS, and media's internal import endpoint."""

    bus: Bus
    media: httpx.AsyncClient
    media_token: str
    # The gateway's admin API, for per-user limits (None: they are not imported).
    gateway: httpx.AsyncClient | None = None
    admin_token: str | None = None

    async def set_limits(self, limits: PlannedLimits) -> bool | None:
        if self.gateway is None or self.admin_token is None:
            return None
        response = await self.gateway.put(
            f"/v1/admin/users/{limits.user_id}/limits",
            json={
                "hourly_limit": limits.hourly_limit,
                "daily_limit": limits.daily_limit,
                "max_concurrent": limits.max_concurrent,
            },
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        if response.status_code == 422:
            raise RefusedError(f"refused: {response.json().get('detail', 'invalid limits')}")
        response.raise_for_status()
        return bool(response.json()["changed"])

    async def models(self) -> dict[str, c.ModelSpec]:
        reply = await self.bus.request(c.LIST_MODELS, c.ListModelsRequest(include_inactive=True))
        return {m.name: m for m in reply.models}

    async def send(self, query: c.Query[Any, c.ImportReply], request: c.Message) -> bool:
        try:
            reply = await self.bus.request(query, request, timeout=30)
        except QueryFailed as exc:
            if exc.code in (c.QueryErrorCode.INVALID, c.QueryErrorCode.CONFLICT):
                raise RefusedError(f"refused: {exc.message}") from exc
            raise
        return reply.created

    async def image_exists(self, image_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return await self._exists(c.GET_IMAGE, c.GetImageRequest(image_id=image_id, viewer_id=user_id))

    async def generation_exists(self, generation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        request = c.GetGenerationRequest(generation_id=generation_id, user_id=user_id)
        return await self._exists(c.GET_GENERATION, request)

    async def _exists(self, query: c.Query[Any, Any], request: c.Message) -> bool:
        try:
            await self.bus.request(query, request)
        except QueryFailed as exc:
            if exc.code is c.QueryErrorCode.NOT_FOUND:
                return False
            raise
        return True

    async def store(
        self, user_id: uuid.UUID, generation_id: uuid.UUID | None, image_id: uuid.UUID, data: bytes
    ) -> tuple[c.StoredObject, ...]:
        headers = {"Authorization": f"Bearer {self.media_token}", "X-Picture-User-Id": str(user_id)}
        if generation_id is not None:
            headers["X-Picture-Generation-Id"] = str(generation_id)
        else:
            headers["X-Picture-Image-Id"] = str(image_id)
        response = await self.media.post("/internal/imports", content=data, headers=headers)
        if response.status_code == 422:
            raise RefusedError(f"bad file: {response.json().get('detail', 'refused by media')}")
        response.raise_for_status()
        return tuple(c.StoredObject.model_validate(o) for o in response.json()["objects"])


class Progress:
    """A progress line on stderr: redrawn in place on a terminal, else every tenth."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stderr

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.out.isatty():
            end = "\n" if done == total else ""
            self.out.write(f"\r{label:<20} {done:>7}/{total:<7} {_bar(done, total)}{end}")
        elif done == total or total < 10 or done % max(1, total // 10) == 0:
            self.out.write(f"{label} {done}/{total}\n")
        self.out.flush()


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return "[" + "#" * filled + "." * (width - filled) + "]"


ProgressFn = Callable[[str, int, int], None]


async def run_import(
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
    objects: ObjectSource,
    target: Target | None,
    *,
    concurrency: int = 4,
    progress: ProgressFn | None = None,
) -> Report:
    """Import ``tables`` (and their files from ``objects``) into ``target``; None: a dry run
    (nothing is sent: the report says what would be imported)."""
    report = Report(dry_run=target is None)
    models = await target.models() if target is not None else {}
    plan = build_plan(tables, models)
    for skip in plan.skipped:
        report.skip(skip)
    report.notes += plan.notes
    show = progress or (lambda label, done, total: None)

    async def simple(table: str, query: c.Query[Any, c.ImportReply], requests: Sequence[c.Message]) -> None:
        for n, request in enumerate(requests, 1):
            await _send(report, target, table, query, request, _key(request))
            show(table, n, len(requests))

    await simple("profiles", c.IMPORT_PROFILE, plan.profiles)
    await simple("tags", c.IMPORT_TAG, plan.tags)
    await simple("prompt_templates", c.IMPORT_TEMPLATE, plan.templates)
    await simple("batch_generations", c.IMPORT_BATCH, plan.batches)
    for n, limits in enumerate(plan.limits, 1):
        await _limits(report, target, limits)
        show("user_rate_limits", n, len(plan.limits))

    gate = asyncio.Semaphore(concurrency)

    async def each(label: str, items: Sequence[Any], one: Callable[[Any], Awaitable[None]]) -> None:
        done = 0

        async def guarded(item: Any) -> None:
            nonlocal done
            async with gate:
                await one(item)
            done += 1
            show(label, done, len(items))

        await asyncio.gather(*(guarded(item) for item in items))

    await each("image_generations", plan.generations, lambda g: _generation(report, target, objects, g))
    await each("images", plan.images, lambda i: _upload(report, target, objects, i))
    return report


def _key(request: c.Message) -> str:
    batch = getattr(request, "batch_id", None)
    if batch is not None:
        return str(batch)
    for name in ("user_id", "tag", "template"):
        value = getattr(request, name, None)
        if value is not None:
            return str(getattr(value, "id", None) or getattr(value, "name", None) or value)
    return "?"


async def _send(
    report: Report,
    target: Target | None,
    table: str,
    query: c.Query[Any, c.ImportReply],
    request: c.Message,
    key: str,
) -> bool:
    """Send one import; counts it. True when the record is there now (written or already)."""
    if target is None:
        report.count(table, "imported")
        return True
    try:
        created = await target.send(query, request)
    except RefusedError as exc:
        report.skip(Skip(table, key, str(exc)))
        return False
    report.count(table, "imported" if created else "already")
    return True


async def _image(
    report: Report,
    target: Target | None,
    objects: ObjectSource,
    planned: PlannedImage,
    generation_id: uuid.UUID | None,
) -> tuple[c.StoredObject, ...] | None:
    """Store and record one image; its stored objects (None: skipped; () in a dry run or when
    it was imported already and nothing needs its objects)."""
    request = planned.request
    key = str(request.image_id)
    if target is None:
        if await objects.find(planned.paths) is None:
            report.skip(Skip("images", key, f"missing file: {_shown(planned.paths)}"))
            return None
        report.count("images", "imported")
        return ()
    data = await objects.read(planned.paths)
    if data is None:
        report.skip(Skip("images", key, f"missing file: {_shown(planned.paths)}"))
        return None
    try:
        stored = await target.store(request.user_id, generation_id, request.image_id, data)
    except RefusedError as exc:
        report.skip(Skip("images", key, str(exc)))
        return None
    if not await _send(
        report, target, "images", c.IMPORT_IMAGE, request.model_copy(update={"objects": stored}), key
    ):
        return None
    return stored


async def _limits(report: Report, target: Target | None, limits: PlannedLimits) -> None:
    key = str(limits.user_id)
    if target is None:
        report.count("user_rate_limits", "imported")
        return
    try:
        changed = await target.set_limits(limits)
    except RefusedError as exc:
        report.skip(Skip("user_rate_limits", key, str(exc)))
        return
    if changed is None:
        report.skip(Skip("user_rate_limits", key, "not imported: no --gateway-url and --admin-token"))
    else:
        report.count("user_rate_limits", "imported" if changed else "already")


async def _upload(
    report: Report, target: Target | None, objects: ObjectSource, planned: PlannedImage
) -> None:
    """An image without a generation (an old upload): stored and recorded unless it is there."""
    if target is not None and await target.image_exists(planned.request.image_id, planned.request.user_id):
        report.count("images", "already")
        return
    await _image(report, target, objects, planned, None)


async def _generation(
    report: Report, target: Target | None, objects: ObjectSource, planned: PlannedGeneration
) -> None:
    request = planned.request
    image = planned.image
    if target is not None:
        exists = await target.generation_exists(request.generation_id, request.user_id)
        image_exists = image is None or await target.image_exists(image.request.image_id, request.user_id)
        if exists and image_exists:
            report.count("image_generations", "already")
            if image is not None:
                report.count("images", "already")
            return
    if image is not None:
        stored = await _image(report, target, objects, image, request.generation_id)
        if stored is None:
            request = request.model_copy(
                update={
                    "status": c.GenerationStatus.FAILED,
                    "error_message": "The image was missing at import",
                    "reason": "completed, but its image could not be imported",
                }
            )
            report.notes.append(Skip("image_generations", str(request.generation_id), request.reason))
        else:
            request = request.model_copy(
                update={"image_id": image.request.image_id, "stored_objects": stored}
            )
    if target is None:
        report.count("image_generations", "imported")
        return
    await _send(report, target, "image_generations", c.IMPORT_GENERATION, request, str(request.generation_id))


def _shown(paths: Sequence[str]) -> str:
    return paths[0] if paths else "(no storage path)"
