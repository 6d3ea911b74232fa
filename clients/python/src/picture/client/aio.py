"""The asynchronous client :class:`AsyncPicture`: the same methods as :class:`Picture`, awaited.

from picture.client import AsyncPicture

async with AsyncPicture() as picture:
    generation = await picture.generate("a lighthouse at dusk", model="flux-schnell", seed=7)
    await picture.download(generation, "lighthouse.webp")
"""

# ruff: noqa: ASYNC109  (the waits take `timeout` like the sync client: one API for both)

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from picture.client import _common as cm
from picture.client import _models as m
from picture.client._config import resolve_base_url, resolve_token
from picture.client._retry import RetryPolicy
from picture.client._sse import aiter_events
from picture.client.errors import (
    AuthenticationError,
    NotFoundError,
    PictureError,
    TransportError,
    WaitTimeoutError,
    error_from_response,
)

log = logging.getLogger("picture.client")

OnGeneration = Callable[[m.GenerationOut], None]
OnBatch = Callable[[m.BatchOut], None]
UPLOAD_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


async def _until(lines: AsyncIterator[str], deadline: float | None) -> AsyncIterator[str]:
    """The stream's lines (heartbeats included) until the deadline: a stalled stream ends too."""
    async for line in lines:
        if deadline is not None and time.monotonic() > deadline:
            raise WaitTimeoutError("deadline passed while following the event stream")
        yield line


class AsyncPicture:
    """One HTTP connection pool per instance; use as a context manager (or call :meth:`close`)."""

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        poll_interval: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.token = resolve_token(token)
        self.base_url = resolve_base_url(base_url)
        self.retry = retry or RetryPolicy()
        self.poll_interval = poll_interval
        self._sleep = sleep
        headers = {"User-Agent": cm.USER_AGENT, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncPicture:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ transport

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        files: Any = None,
        only_rejected: bool = False,
    ) -> httpx.Response:
        """Send with retries (see :mod:`picture.client._retry`); a non-2xx answer raises."""
        request = self._http.build_request(
            method, path, json=json, params=params, headers=headers, files=files
        )
        attempt = 0
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                delay = self.retry.delay_for_error(request, exc, attempt, only_rejected=only_rejected)
                if delay is None:
                    raise TransportError(f"cannot reach {self.base_url}: {exc}") from exc
                log.info("retrying %s %s in %.2fs after %s", method, path, delay, exc)
            else:
                if response.is_success or response.is_redirect:
                    return response
                delay = self.retry.delay_for_response(response, attempt, only_rejected=only_rejected)
                if delay is None:
                    raise error_from_response(response)
                log.info("retrying %s %s in %.2fs after %d", method, path, delay, response.status_code)
            await self._sleep(delay)
            attempt += 1

    # ------------------------------------------------------------------ account and models

    async def models(self) -> m.ModelList:
        return cm.parse(m.ModelList, await self.request("GET", "/v1/models"))

    async def me(self) -> m.MeOut:
        return cm.parse(m.MeOut, await self.request("GET", "/v1/me"))

    async def limits(self) -> m.LimitsOut:
        return cm.parse(m.LimitsOut, await self.request("GET", "/v1/me/limits"))

    # ------------------------------------------------------------------ generations

    async def submit(
        self, prompt: str, *, model: str, idempotency_key: str | None = None, **params: Any
    ) -> m.GenerationOut:
        """POST /v1/generations with an Idempotency-Key (one per call, reused by its retries)."""
        body = cm.generation_body(prompt, model=model, **params)
        key = idempotency_key or cm.new_idempotency_key()
        response = await self.request("POST", "/v1/generations", json=body, headers={"Idempotency-Key": key})
        return cm.parse(m.GenerationOut, response)

    async def generation(self, generation_id: str) -> m.GenerationOut:
        return cm.parse(m.GenerationOut, await self.request("GET", f"/v1/generations/{generation_id}"))

    async def generations(
        self,
        *,
        status: str | None = None,
        batch_id: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> m.GenerationPage:
        params = {"status": status, "batch_id": batch_id, "limit": limit, "cursor": cursor}
        response = await self.request(
            "GET", "/v1/generations", params={k: v for k, v in params.items() if v is not None}
        )
        return cm.parse(m.GenerationPage, response)

    async def cancel(self, generation_id: str) -> m.GenerationOut:
        return cm.parse(
            m.GenerationOut, await self.request("POST", f"/v1/generations/{generation_id}/cancel")
        )

    async def events(
        self, generation_id: str, *, last_event_id: str | None = None, deadline: float | None = None
    ) -> AsyncGenerator[m.GenerationOut, None]:
        """The generation's live updates (SSE) until a terminal state; raises on a broken stream."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        try:
            async with self._http.stream(
                "GET",
                f"/v1/generations/{generation_id}/events",
                headers=headers,
                timeout=httpx.Timeout(30, read=60),
            ) as response:
                if response.status_code == 204:
                    return
                if not response.is_success:
                    await response.aread()
                    raise error_from_response(response)
                async for event in aiter_events(_until(response.aiter_lines(), deadline)):
                    if event.event == "generation":
                        yield m.GenerationOut.model_validate(json.loads(event.data))
        except httpx.HTTPError as exc:
            raise TransportError(f"event stream broken: {exc}") from exc

    async def wait(
        self,
        generation_id: str,
        *,
        timeout: float = 600.0,
        on_update: OnGeneration | None = None,
        use_sse: bool = True,
    ) -> m.GenerationOut:
        """Follow a generation to its end: the SSE stream, falling back to polling when it fails."""
        deadline = time.monotonic() + timeout
        if use_sse:
            try:
                async with contextlib.aclosing(self.events(generation_id, deadline=deadline)) as stream:
                    async for generation in stream:
                        if on_update is not None:
                            on_update(generation)
                        if cm.status_of(generation) in cm.TERMINAL:
                            return generation
                        if time.monotonic() > deadline:
                            break
            except (AuthenticationError, NotFoundError):
                raise
            except (PictureError, ValueError) as exc:
                log.info("event stream of %s failed (%s); polling instead", generation_id, exc)
        while True:
            generation = await self.generation(generation_id)
            if on_update is not None:
                on_update(generation)
            if cm.status_of(generation) in cm.TERMINAL:
                return generation
            if time.monotonic() > deadline:
                raise WaitTimeoutError(f"generation {generation_id} not finished after {timeout:.0f}s")
            await self._sleep(self.poll_interval)

    async def generate(
        self,
        prompt: str,
        *,
        model: str,
        timeout: float = 600.0,
        on_update: OnGeneration | None = None,
        **params: Any,
    ) -> m.GenerationOut:
        """Submit and wait for the end; returns the final state (check ``status``)."""
        generation = await self.submit(prompt, model=model, **params)
        if on_update is not None:
            on_update(generation)
        if cm.status_of(generation) in cm.TERMINAL:
            return generation
        return await self.wait(str(generation.id), timeout=timeout, on_update=on_update)

    # ------------------------------------------------------------------ batches

    async def submit_batch(
        self, prompts: list[str], *, model: str, idempotency_key: str | None = None, **params: Any
    ) -> m.BatchOut:
        body = cm.batch_body(prompts, model=model, **params)
        key = idempotency_key or cm.new_idempotency_key()
        return cm.parse(
            m.BatchOut,
            await self.request(
                "POST",
                "/v1/batches",
                json=body,
                headers={"Idempotency-Key": key},
                only_rejected=True,  # the gateway does not deduplicate batch submits (yet)
            ),
        )

    async def get_batch(self, batch_id: str) -> m.BatchOut:
        return cm.parse(m.BatchOut, await self.request("GET", f"/v1/batches/{batch_id}"))

    async def batches(self, *, limit: int = 20, cursor: str | None = None) -> m.BatchPage:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return cm.parse(m.BatchPage, await self.request("GET", "/v1/batches", params=params))

    async def cancel_batch(self, batch_id: str) -> m.BatchOut:
        return cm.parse(m.BatchOut, await self.request("POST", f"/v1/batches/{batch_id}/cancel"))

    async def retry_failed(self, batch_id: str) -> m.BatchOut:
        return cm.parse(m.BatchOut, await self.request("POST", f"/v1/batches/{batch_id}/retry-failed"))

    async def delete_batch(self, batch_id: str) -> None:
        await self.request("DELETE", f"/v1/batches/{batch_id}")

    async def wait_batch(
        self, batch_id: str, *, timeout: float = 900.0, on_update: OnBatch | None = None
    ) -> m.BatchOut:
        """Poll a batch until it is finished (completed, partial or failed)."""
        deadline = time.monotonic() + timeout
        while True:
            batch = await self.get_batch(batch_id)
            if on_update is not None:
                on_update(batch)
            if cm.status_of(batch) in cm.BATCH_DONE:
                return batch
            if time.monotonic() > deadline:
                raise WaitTimeoutError(f"batch {batch_id} not finished after {timeout:.0f}s")
            await self._sleep(self.poll_interval)

    async def batch(
        self,
        prompts: list[str],
        *,
        model: str,
        timeout: float = 900.0,
        on_update: OnBatch | None = None,
        **params: Any,
    ) -> list[m.BatchOut]:
        """Submit prompts in batches of at most 10 and wait for all of them."""
        chunks = [prompts[i : i + cm.BATCH_MAX_PROMPTS] for i in range(0, len(prompts), cm.BATCH_MAX_PROMPTS)]
        submitted = [await self.submit_batch(chunk, model=model, **params) for chunk in chunks]
        return [await self.wait_batch(str(b.id), timeout=timeout, on_update=on_update) for b in submitted]

    # ------------------------------------------------------------------ images and tags

    async def images(
        self,
        *,
        tags: list[str] | None = None,
        favorite: bool | None = None,
        archived: bool = False,
        model: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> m.ImagePage:
        params: list[tuple[str, str | int]] = [("archived", str(archived).lower()), ("limit", limit)]
        params += [("tag", t) for t in tags or []]
        if favorite is not None:
            params.append(("favorite", str(favorite).lower()))
        if model:
            params.append(("model", model))
        if cursor:
            params.append(("cursor", cursor))
        return cm.parse(m.ImagePage, await self.request("GET", "/v1/images", params=params))

    async def image(self, image_id: str) -> m.GalleryImage:
        return cm.parse(m.GalleryImage, await self.request("GET", f"/v1/images/{image_id}"))

    async def tags(self) -> m.TagList:
        return cm.parse(m.TagList, await self.request("GET", "/v1/tags"))

    async def tag_image(self, image_id: str, name: str) -> m.GalleryImage:
        return cm.parse(
            m.GalleryImage, await self.request("POST", f"/v1/images/{image_id}/tags", json={"name": name})
        )

    async def download(self, target: Any, path: str | Path) -> Path:
        """Write an image's bytes to ``path``: ``target`` is an image id, an image, or a completed
        generation. Redirects are followed (the token is not sent to another host)."""
        image_id = cm.image_id_of(target)
        out = Path(path)
        response = await self.request("GET", f"/v1/images/{image_id}/content", headers={"Accept": "*/*"})
        if response.is_redirect:
            target = self._http.build_request("GET", response.url.join(response.headers["Location"]))
            if _origin(target.url) != _origin(response.url):  # storage URLs are signed: no token there
                target.headers.pop("Authorization", None)
            response = await self._http.send(target, follow_redirects=True)
            if not response.is_success:
                raise error_from_response(response)
        await asyncio.to_thread(out.write_bytes, response.content)
        return out

    # ------------------------------------------------------------------ more of the library

    async def model(self, name: str) -> m.ModelOut:
        return cm.parse(m.ModelOut, await self.request("GET", f"/v1/models/{name}"))

    async def update_me(self, **fields: Any) -> m.MeOut:
        body = cm.validated(m.MeUpdate, fields).model_dump(mode="json", exclude_unset=True)
        return cm.parse(m.MeOut, await self.request("PATCH", "/v1/me", json=body))

    async def explore(self, *, limit: int = 20, cursor: str | None = None) -> m.ImagePage:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return cm.parse(m.ImagePage, await self.request("GET", "/v1/explore", params=params))

    async def update_image(self, image_id: str, **fields: Any) -> m.GalleryImage:
        """PATCH an own image (``is_favorite``, ``is_public``, ``rating`` ...: see ``ImagePatch``)."""
        body = cm.validated(m.ImagePatch, fields).model_dump(mode="json", exclude_unset=True)
        return cm.parse(m.GalleryImage, await self.request("PATCH", f"/v1/images/{image_id}", json=body))

    async def delete_image(self, image_id: str) -> None:
        await self.request("DELETE", f"/v1/images/{image_id}")

    async def bulk_images(self, action: str, ids: list[str]) -> m.BulkResult:
        body = cm.validated(m.BulkAction, {"action": action, "ids": ids}).model_dump(mode="json")
        return cm.parse(m.BulkResult, await self.request("POST", "/v1/images/bulk", json=body))

    async def untag_image(self, image_id: str, name: str) -> m.GalleryImage:
        return cm.parse(m.GalleryImage, await self.request("DELETE", f"/v1/images/{image_id}/tags/{name}"))

    async def like(self, image_id: str) -> m.LikeOut:
        return cm.parse(m.LikeOut, await self.request("POST", f"/v1/images/{image_id}/like"))

    async def unlike(self, image_id: str) -> m.LikeOut:
        return cm.parse(m.LikeOut, await self.request("DELETE", f"/v1/images/{image_id}/like"))

    async def create_tag(self, name: str, color: str | None = None) -> m.TagOut:
        fields = {"name": name} | ({"color": color} if color else {})
        body = cm.validated(m.TagCreate, fields).model_dump(mode="json", exclude_unset=True)
        return cm.parse(m.TagOut, await self.request("POST", "/v1/tags", json=body))

    async def templates(self, *, limit: int = 20, cursor: str | None = None) -> m.TemplatePage:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return cm.parse(m.TemplatePage, await self.request("GET", "/v1/prompt-templates", params=params))

    async def create_template(self, **fields: Any) -> m.TemplateOut:
        body = cm.validated(m.TemplateCreate, fields).model_dump(mode="json", exclude_unset=True)
        return cm.parse(m.TemplateOut, await self.request("POST", "/v1/prompt-templates", json=body))

    async def template(self, template_id: str) -> m.TemplateOut:
        return cm.parse(m.TemplateOut, await self.request("GET", f"/v1/prompt-templates/{template_id}"))

    async def update_template(self, template_id: str, **fields: Any) -> m.TemplateOut:
        body = cm.validated(m.TemplatePatch, fields).model_dump(mode="json", exclude_unset=True)
        path = f"/v1/prompt-templates/{template_id}"
        return cm.parse(m.TemplateOut, await self.request("PATCH", path, json=body))

    async def delete_template(self, template_id: str) -> None:
        await self.request("DELETE", f"/v1/prompt-templates/{template_id}")

    async def upload(self, path: str | Path, content_type: str | None = None) -> m.ImageOut:
        """Upload a JPEG, PNG or WebP image (multipart field ``file``). Not retried on 5xx: a POST
        without an Idempotency-Key."""
        source = Path(path)
        kind = content_type or UPLOAD_TYPES.get(source.suffix.lower(), "application/octet-stream")
        files = {"file": (source.name, await asyncio.to_thread(source.read_bytes), kind)}
        response = await self.request("POST", "/v1/uploads", files=files)
        return cm.parse(m.ImageOut, response)
