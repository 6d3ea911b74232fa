"""A small async client of the Replicate HTTP API (the calls the adapter needs).

One :class:`httpx.AsyncClient` per process, built by :func:`build_http_client` in the app's
lifespan (tests pass a ``transport``: an :class:`httpx.MockTransport` or nothing, to reach the
simulator). Errors are classified once, here (see :mod:`picture.replicate_adapter.errors`)::

    client = ReplicateClient(build_http_client(base_url, token, timeout=30))
    prediction = await client.create_prediction(model, {"prompt": "a cat"})
    prediction = await client.get_prediction(prediction.id)
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from picture.common.contracts import ModelSpec
from picture.common.text import storable
from picture.replicate_adapter.breaker import BreakerOpen, CircuitBreaker
from picture.replicate_adapter.errors import (
    PermanentReplicateError,
    ReplicateError,
    TransientReplicateError,
)
from picture.replicate_adapter.metrics import REQUEST_SECONDS, REQUESTS

__all__ = [
    "TERMINAL_STATUSES",
    "Prediction",
    "ReplicateClient",
    "build_http_client",
    "normalize_output",
]

KNOWN_STATUSES = frozenset({"starting", "processing", "succeeded", "failed", "canceled", "aborted"})
ACTIVE_STATUSES = frozenset({"starting", "processing"})
TERMINAL_STATUSES = KNOWN_STATUSES - ACTIVE_STATUSES
_RESETS_IN = re.compile(r"resets in ~?\s*(\d+(?:\.\d+)?)\s*s")


def build_http_client(
    base_url: str,
    token: str,
    *,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The process's one client to Replicate (``base_url`` is the host root)."""
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers={
            "Authorization": f"Bearer {token}",
            "User-Agent": "picture-replicate-adapter/0.1",
        },
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        transport=transport,
        follow_redirects=False,
    )


def normalize_output(output: Any) -> tuple[str, ...]:
    """Image URLs from a prediction's output: a list of URLs, one URL string, an object with
    ``url``, or lists of those. Anything else (None, numbers) gives no URL."""
    if output is None:
        return ()
    if isinstance(output, str):
        return (output,) if output else ()
    if isinstance(output, dict):
        url = output.get("url")
        return (url,) if isinstance(url, str) and url else ()
    if isinstance(output, list | tuple):
        return tuple(url for item in output for url in normalize_output(item))
    return ()


@dataclass(frozen=True)
class Prediction:
    """The fields of Replicate's prediction object the adapter uses (``raw``: all of it)."""

    id: str
    status: str
    output: Any = None
    error: str | None = None
    predict_time: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: Any) -> Prediction:
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise TransientReplicateError("Replicate answered without a prediction object")
        metrics = body.get("metrics") or {}
        predict_time = metrics.get("predict_time") if isinstance(metrics, dict) else None
        error = body.get("error")
        return cls(
            id=body["id"],
            status=str(body.get("status") or "unknown"),
            output=body.get("output"),
            error=storable(str(error)) if error not in (None, "") else None,
            predict_time=float(predict_time) if isinstance(predict_time, int | float) else None,
            raw=body,
        )

    @property
    def run_seconds(self) -> float | None:
        """Created to completed by Replicate's own clock (None while running or unknown)."""
        try:
            created = datetime.fromisoformat(str(self.raw["created_at"]))
            completed = datetime.fromisoformat(str(self.raw["completed_at"]))
            return max(0.0, (completed - created).total_seconds())
        except (KeyError, ValueError, TypeError):
            return self.predict_time

    @property
    def is_terminal(self) -> bool:
        """Known terminal statuses and anything unrecognised (never wait on it forever)."""
        return self.status not in ACTIVE_STATUSES

    @property
    def output_urls(self) -> tuple[str, ...]:
        return normalize_output(self.output)

    @property
    def created_at(self) -> datetime | None:
        value = self.raw.get("created_at")
        try:
            return datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None


def _retry_after(response: httpx.Response, detail: str) -> float | None:
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    match = _RESETS_IN.search(detail)
    return float(match.group(1)) if match else None


def _detail(response: httpx.Response) -> str:
    """The problem-details ``detail`` (or ``title``), else a short excerpt of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "title", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    return response.reason_phrase


def classify(response: httpx.Response) -> ReplicateError | None:
    """None for a 2xx answer, else the typed error it stands for."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    detail = _detail(response)
    message = f"Replicate answered {status}: {detail}"
    if status == 429:
        return TransientReplicateError(message, status=status, retry_after=_retry_after(response, detail))
    if status >= 500 or status == 408:
        return TransientReplicateError(message, status=status, retry_after=_retry_after(response, ""))
    return PermanentReplicateError(message, status=status)


class ReplicateClient:
    """Typed calls over one shared :class:`httpx.AsyncClient`; ``max_concurrency`` caps the
    calls in flight (a bulkhead, so a slow Replicate cannot take every connection) and
    ``breaker`` refuses every call while Replicate is failing (see
    :mod:`picture.replicate_adapter.breaker`). With ``webhook_url``, predictions are created
    with that webhook (events start and completed)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        max_concurrency: int = 32,
        breaker: CircuitBreaker | None = None,
        webhook_url: str | None = None,
    ) -> None:
        self.http = http
        self._limit = asyncio.Semaphore(max_concurrency)
        self.breaker = breaker or CircuitBreaker()
        self.webhook_url = webhook_url

    async def create_prediction(
        self,
        model: ModelSpec,
        input: dict[str, Any],
        *,
        cancel_after_seconds: float | None = None,
        webhook_marker: dict[str, str] | None = None,
    ) -> Prediction:
        """POST the prediction: the official-model endpoint when the model has no version,
        else /v1/predictions with the version. Not idempotent at Replicate: a timeout after
        sending raises :class:`TransientReplicateError` with ``maybe_created``.
        ``webhook_marker`` goes into the webhook URL's query: Replicate calls back that exact
        URL, so its webhooks say which attempt a prediction belongs to."""
        headers = {}
        if cancel_after_seconds is not None:
            headers["Cancel-After"] = f"{max(1, int(cancel_after_seconds))}s"
        if model.version is None:
            owner, _, name = model.replicate_id.partition("/")
            path = f"/v1/models/{owner}/{name}/predictions"
            body: dict[str, Any] = {"input": input}
        else:
            path = "/v1/predictions"
            body = {"version": model.version, "input": input}
        if self.webhook_url:
            query = urlencode(webhook_marker or {})
            sep = "&" if "?" in self.webhook_url else "?"
            body["webhook"] = f"{self.webhook_url}{sep}{query}" if query else self.webhook_url
            # Completion only: the create's answer already says the prediction exists (we
            # report it started then), so a "start" webhook would cost a round through the
            # gateway and the adapter per generation for nothing new.
            body["webhook_events_filter"] = ["completed"]
        response = await self._call("create", model.name, "POST", path, json=body, headers=headers)
        return Prediction.from_json(response.json())

    async def get_prediction(self, prediction_id: str, *, model: str = "unknown") -> Prediction:
        response = await self._call("get", model, "GET", f"/v1/predictions/{prediction_id}")
        return Prediction.from_json(response.json())

    async def cancel_prediction(self, prediction_id: str, *, model: str = "unknown") -> Prediction:
        response = await self._call("cancel", model, "POST", f"/v1/predictions/{prediction_id}/cancel")
        return Prediction.from_json(response.json())

    async def list_predictions(
        self, *, created_after: datetime | None = None, max_pages: int = 100
    ) -> AsyncIterator[Prediction]:
        """Predictions newest first, those created at or after ``created_after`` when given
        (used to reconcile an uncertain create; the caller stops once they are older). More
        than ``max_pages`` pages: :class:`TransientReplicateError` (never a partial answer)."""
        url = "/v1/predictions"
        if created_after is not None:
            url += "?" + urlencode({"created_after": created_after.isoformat()})
        for _ in range(max_pages):
            response = await self._call("list", "unknown", "GET", url)
            body = response.json()
            for item in body.get("results") or ():
                yield Prediction.from_json(item)
            following = body.get("next")
            if not isinstance(following, str) or not following:
                return
            url = following
        raise TransientReplicateError(f"more than {max_pages} pages of predictions to look through")

    async def _send(
        self,
        endpoint: str,
        method: str,
        url: str,
        json: dict[str, Any] | None,
        headers: dict[str, str] | None,
    ) -> httpx.Response:
        """One HTTP request; transport errors become :class:`TransientReplicateError`."""
        try:
            return await self.http.request(method, url, json=json, headers=headers)
        except httpx.TimeoutException as exc:
            # A connect timeout never reached Replicate; any other timeout may have.
            sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise TransientReplicateError(
                f"Replicate did not answer in time ({type(exc).__name__})",
                maybe_created=sent and endpoint == "create",
            ) from exc
        except httpx.TransportError as exc:
            sent = not isinstance(exc, httpx.ConnectError)
            raise TransientReplicateError(
                f"Replicate is unreachable ({type(exc).__name__}: {exc})",
                maybe_created=sent and endpoint == "create",
            ) from exc

    async def _call(
        self,
        endpoint: str,
        model: str,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with self._limit:
                # After the bulkhead: calls queued there see the breaker as it is now.
                probe = self.breaker.acquire()
                failed: bool | None = None  # None: neutral (429, or the call was abandoned)
                try:
                    response = await self._send(endpoint, method, url, json, headers)
                    failed = response.status_code >= 500
                    if response.status_code == 429:
                        failed = None
                    elif response.status_code < 300:
                        try:
                            response.json()
                        except ValueError:
                            failed = True
                except TransientReplicateError:
                    failed = True
                    raise
                finally:
                    self.breaker.record(probe=probe, failed=failed)
            error = classify(response)
            if error is not None:
                if endpoint == "create" and isinstance(error, TransientReplicateError):
                    # A gateway error or timeout in front of Replicate may hide a created one.
                    error.maybe_created = response.status_code in (502, 504)
                raise error
            try:
                response.json()
            except ValueError as exc:
                raise TransientReplicateError(
                    "Replicate answered with a body that is not JSON",
                    status=response.status_code,
                    maybe_created=endpoint == "create",
                ) from exc
            return response
        except BreakerOpen:
            outcome = "breaker_open"
            raise
        except TransientReplicateError:
            outcome = "transient"
            raise
        except PermanentReplicateError:
            outcome = "permanent"
            raise
        finally:
            REQUESTS.labels(endpoint, outcome).inc()
            REQUEST_SECONDS.labels(endpoint, model).observe(time.perf_counter() - started)
