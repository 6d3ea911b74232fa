"""The synchronous client :class:`Picture` (the async twin is in :mod:`picture.client.aio`).

from picture.client import Picture

with Picture() as picture:                      # PICTURE_TOKEN / PICTURE_BASE_URL
    generation = picture.generate("a lighthouse at dusk", model="flux-schnell", seed=7)
    picture.download(generation, "lighthouse.webp")
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx

from picture.client import _common as cm
from picture.client import _models as m
from picture.client._config import resolve_base_url, resolve_token
from picture.client._retry import RetryPolicy
from picture.client._sse import iter_events
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


def _until(lines: Iterator[str], deadline: float | None) -> Iterator[str]:
    """The stream's lines (heartbeats included) until the deadline: a stalled stream ends too."""
    for line in lines:
        if deadline is not None and time.monotonic() > deadline:
            raise WaitTimeoutError("deadline passed while following the event stream")
        yield line


class Picture:
    """One HTTP connection pool per instance; use as a context manager (or call :meth:`close`)."""

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        poll_interval: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.token = resolve_token(token)
        self.base_url = resolve_base_url(base_url)
        self.retry = retry or RetryPolicy()
        self.poll_interval = poll_interval
        self._sleep = sleep
        headers = {"User-Agent": cm.USER_AGENT, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Picture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ transport

    def request(
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
                response = self._http.send(request)
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
            self._sleep(delay)
            attempt += 1

    # ------------------------------------------------------------------ account and models

    def models(self) -> m.ModelList:
        return cm.parse(m.ModelList, self.request("GET", "/v1/models"))

    def me(self) -> m.MeOut:
        return cm.parse(m.MeOut, self.request("GET", "/v1/me"))

    def limits(self) -> m.LimitsOut:
        return cm.parse(m.LimitsOut, self.request("GET", "/v1/me/limits"))

    # ------------------------------------------------------------------ generations

    def submit(
        self, prompt: str, *, model: str, idempotency_key: str | None = None, **params: Any
    ) -> m.GenerationOut:
        """POST /v1/generations with an Idempotency-Key (one per call, reused by its retries)."""
        body = cm.generation_body(prompt, model=model, **params)
        key = idempotency_key or cm.new_idempotency_key()
        response = self.request("POST", "/v1/generations", json=body, headers={"Idempotency-Key": key})
        return cm.parse(m.GenerationOut, response)

    def generation(self, generation_id: str) -> m.GenerationOut:
        return cm.parse(m.GenerationOut, self.request("GET", f"/v1/generations/{generation_id}"))

    def generations(
        self,
        *,
        status: str | None = None,
        batch_id: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> m.GenerationPage:
        params = {"status": status, "batch_id": batch_id, "limit": limit, "cursor": cursor}
        response = self.request(
            "GET", "/v1/generations", params={k: v for k, v in params.items() if v is not None}
        )
        return cm.parse(m.GenerationPage, response)

    def cancel(self, generation_id: str) -> m.GenerationOut:
        return cm.parse(m.GenerationOut, self.request("POST", f"/v1/generations/{generation_id}/cancel"))

    def events(
        self, generation_id: str, *, last_event_id: str | None = None, deadline: float | None = None
    ) -> Generator[m.GenerationOut, None, None]:
        """The generation's live updates (SSE) until a terminal state; raises on a broken stream."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        try:
            with self._http.stream(
                "GET",
                f"/v1/generations/{generation_id}/events",
                headers=headers,
                timeout=httpx.Timeout(30, read=60),
            ) as response:
                if response.status_code == 204:
                    return
                if not response.is_success:
                    response.read()
                    raise error_from_response(response)
                for event in iter_events(_until(response.iter_lines(), deadline)):
                    if event.event == "generation":
                        yield m.GenerationOut.model_validate(json.loads(event.data))
        except httpx.HTTPError as exc:
            raise TransportError(f"event stream broken: {exc}") from exc

    def wait(
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
                with contextlib.closing(self.events(generation_id, deadline=deadline)) as stream:
                    for generation in stream:
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
            generation = self.generation(generation_id)
            if on_update is not None:
                on_update(generation)
            if cm.status_of(generation) in cm.TERMINAL:
                return generation
            if time.monotonic() > deadline:
                raise WaitTimeoutError(f"generation {generation_id} not finished after {timeout:.0f}s")
            self._sleep(self.poll_interval)

    def generate(
        self,
        prompt: str,
        *,
        model: str,
        timeout: float = 600.0,
        on_update: OnGeneration | None = None,
        **params: Any,
    ) -> m.GenerationOut:
        """Submit and wait for the end; returns the final state (check ``status``)."""
        generation = self.submit(prompt, model=model, **params)
        if on_update is not None:
            on_update(generation)
        if cm.status_of(generation) in cm.TERMINAL:
            return generation
        return self.wait(str(generation.id), timeout=timeout, on_update=on_update)

    # ------------------------------------------------------------------ batches

    def submit_batch(
        self, prompts: list[str], *, model: str, idempotency_key: str | None = None, **params: Any
    ) -> m.BatchOut:
        body = cm.batch_body(prompts, model=model, **params)
        key = idempotency_key or cm.new_idempotency_key()
        return cm.parse(
            m.BatchOut,
            self.request(
                "POST",
                "/v1/batches",
                json=body,
                headers={"Idempotency-Key": key},
                only_rejected=True,  # the gateway does not deduplicate batch submits (yet)
            ),
        )

    def get_batch(self, batch_id: str) -> m.BatchOut:
        return cm.parse(m.BatchOut, self.request("GET", f"/v1/batches/{batch_id}"))

    def batches(self, *, limit: int = 20, cursor: str | None = None) -> m.BatchPage:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return cm.parse(m.BatchPage, self.request("GET", "/v1/batches", params=params))

    def cancel_batch(self, batch_id: str) -> m.BatchOut:
        return cm.parse(m.BatchOut, self.request("POST", f"/v1/batches/{batch_id}/cancel"))

    def retry_failed(self, batch_id: str) -> m.BatchOut:
        return cm.parse(m.BatchOut, self.request("POST", f"/v1/batches/{batch_id}/retry-failed"))

    def delete_batch(self, batch_id: str) -> None:
        self.request("DELETE", f"/v1/batches/{batch_id}")

    def wait_batch(
        self, batch_id: str, *, timeout: float = 900.0, on_update: OnBatch | None = None
    ) -> m.BatchOut:
        """Poll a batch until it is finished (completed, partial or failed)."""
        deadline = time.monotonic() + timeout
        while True:
            batch = self.get_batch(batch_id)
            if on_update is not None:
                on_update(batch)
            if cm.status_of(batch) in cm.BATCH_DONE:
                return batch
            if time.monotonic() > deadline:
                raise WaitTimeoutError(f"batch {batch_id} not finished after {timeout:.0f}s")
            self._sleep(self.poll_interval)

    def batch(
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
        submitted = [self.submit_batch(chunk, model=model, **params) for chunk in chunks]
        return [self.wait_batch(str(b.id), timeout=timeout, on_update=on_update) for b in submitted]

    # ------------------------------------------------------------------ images and tags

    def images(
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
        return cm.parse(m.ImagePage, self.request("GET", "/v1/images", params=params))

    def image(self, image_id: str) -> m.GalleryImage:
        return cm.parse(m.GalleryImage, self.request("GET", f"/v1/images/{image_id}"))

    def tags(self) -> m.TagList:
        return cm.parse(m.TagList, self.request("GET", "/v1/tags"))

    def tag_image(self, image_id: str, name: str) -> m.GalleryImage:
        return cm.parse(
            m.GalleryImage, self.request("POST", f"/v1/images/{image_id}/tags", json={"name": name})
        )

    def download(self, target: Any, path: str | Path) -> Path:
        """Write an image's bytes to ``path``: ``target`` is an image id, an image, or a completed
        generation. Redirects are followed (the token is not sent to another host)."""
        image_id = cm.image_id_of(target)
        out = Path(path)
        response = self.request("GET", f"/v1/images/{image_id}/content", headers={"Accept": "*/*"})
        if response.is_redirect:
            target = self._http.build_request("GET", response.url.join(response.headers["Location"]))
            if _origin(target.url) != _origin(response.url):  # storage URLs are signed: no token there
                target.headers.pop("Authorization", None)
            response = self._http.send(target, follow_redirects=True)
            if not response.is_success:
                raise error_from_response(response)
        out.write_bytes(response.content)
        return out

    # ------------------------------------------------------------------ more of the library

    def model(self, name: str) -> m.ModelOut:
        return cm.parse(m.ModelOut, self.request("GET", f"/v1/models/{name}"))

    def update_me(self, **fields: Any) -> m.MeOut:
        body = cm.validated(m.MeUpdate, fields).model_dump(mode="json", exclude_unset=True)
        return cm.parse(m.MeOut, self.request("PATCH", "/v1/me", json=body))

    def explore(self, *, limit: int = 20, cursor: str | None = None) -> m.ImagePage:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return cm.parse(m.ImagePage, self.request("GET", "/v1/explore", params=params))

    def update_image(self, image_id: str, **fields: Any) -> m.GalleryImage:
        """PATCH an own image (``is_favorite``, ``is_public``, ``rating`` ...: see ``ImagePatch``)."""
        body = cm.validated(m.ImagePatch, fields).model_dump(mode="json", exclude_unset=True)
        return cm.parse(m.GalleryImage, self.request("PATCH", f"/v1/images/{image_id}", json=body))

    def delete_image(self, image_id: str) -> None:
        self.request("DELETE", f"/v1/images/{image_id}")

    def bulk_images(self, action: str, ids: list[str]) -> m.BulkResult:
        body = cm.validated(m.BulkAction, {"action": action, "ids": ids}).model_dump(mode="json")
        return cm.parse(m.BulkResult, self.request("POST", "/v1/images/bulk", json=body))

    def untag_image(self, image_id: str, name: str) -> m.GalleryImage:
        return cm.parse(m.GalleryImage, self.request("DELETE", f"/v1/images/{image_id}/tags/{name}"))

    def like(self, image_id: str) -> m.LikeOut:
        return cm.parse(m.LikeOut, self.request("POST", f"/v1/images/{image_id}/like"))

    def unlike(self, image_id: str) -> m.LikeOut:
        return cm.parse(m.LikeOut, self.request("DELETE", f"/v1/images/{image_id}/like"))

    def create_tag(self, name: str, color: str | None = None) -> m.TagOut:
        fields = {"name": name} | ({"color": color} if color else {})
        body = cm.validated(m.TagCreate, fields).model_dump(mode="json", exclude_unset=True)
        return cm.parse(m.TagOut, self.request("POST", "/v1/tags", json=body))

    def templates(self, *, limit: int = 20, cursor: str | None = None) -> m.TemplatePage:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return cm.parse(m.TemplatePage, self.request("GET", "/v1/prompt-templates", params=params))

    def create_template(self, **fields: Any) -> m.TemplateOut:
        body = cm.validated(m.TemplateCreate, fields).model_dump(mode="json", exclude_unset=True)
        return cm.parse(m.TemplateOut, self.request("POST", "/v1/prompt-templates", json=body))

    def template(self, template_id: str) -> m.TemplateOut:
        return cm.parse(m.TemplateOut, self.request("GET", f"/v1/prompt-templates/{template_id}"))

    def update_template(self, template_id: str, **fields: Any) -> m.TemplateOut:
        body = cm.validated(m.TemplatePatch, fields).model_dump(mode="json", exclude_unset=True)
        path = f"/v1/prompt-templates/{template_id}"
        return cm.parse(m.TemplateOut, self.request("PATCH", path, json=body))

    def delete_template(self, template_id: str) -> None:
        self.request("DELETE", f"/v1/prompt-templates/{template_id}")

    def upload(self, path: str | Path, content_type: str | None = None) -> m.ImageOut:
        """Upload a JPEG, PNG or WebP image (multipart field ``file``). Not retried on 5xx: a POST
        without an Idempotency-Key."""
        source = Path(path)
        kind = content_type or UPLOAD_TYPES.get(source.suffix.lower(), "application/octet-stream")
        files = {"file": (source.name, source.read_bytes(), kind)}
        response = self.request("POST", "/v1/uploads", files=files)
        return cm.parse(m.ImageOut, response)
