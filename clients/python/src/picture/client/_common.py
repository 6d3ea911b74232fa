"""What the sync and async clients share: request bodies, parsing, constants."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import httpx
import pydantic
from pydantic import BaseModel

from picture.client import _models as m
from picture.client.errors import ValidationError

TERMINAL = frozenset({"completed", "failed", "cancelled"})
BATCH_DONE = frozenset({"completed", "partial", "failed"})
BATCH_MAX_PROMPTS = 10
USER_AGENT = "picture-client/0.1"

M = TypeVar("M", bound=BaseModel)


def status_of(obj: Any) -> str:
    status = getattr(obj, "status", obj)
    return str(getattr(status, "value", status))


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def parse(model: type[M], response: httpx.Response) -> M:
    return model.model_validate_json(response.content)


def parse_size(size: str | None) -> tuple[int | None, int | None]:
    """``"1344x768"`` -> (1344, 768); None -> (None, None)."""
    if not size:
        return None, None
    width, sep, height = size.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValueError(f"size must look like 1344x768, not {size!r}")
    return int(width), int(height)


def validated(model: type[M], fields: dict[str, Any]) -> M:
    """Check a request body against the generated model before sending it: the same rules as
    the gateway's, raised as :class:`ValidationError` (``field`` like the gateway's ``body.width``)."""
    try:
        return model.model_validate(fields)
    except pydantic.ValidationError as exc:
        errors = [
            {"field": "body." + ".".join(str(p) for p in e["loc"] if p != "root"), "message": e["msg"]}
            for e in exc.errors()
        ]
        first = errors[0]
        raise ValidationError(
            f"invalid request ({first['field']}): {first['message']}",
            status=None,
            title="Invalid request",
            detail=f"{first['field']}: {first['message']}",
            field=first["field"],
            errors=errors,
        ) from None


def generation_body(
    prompt: str,
    *,
    model: str,
    width: int | None = None,
    height: int | None = None,
    negative_prompt: str | None = None,
    steps: int | None = None,
    guidance_scale: float | None = None,
    seed: int | None = None,
    webhook_url: str | None = None,
    reuse: bool = True,
) -> dict[str, Any]:
    fields = {
        "model": model,
        "prompt": prompt,
        "width": width,
        "height": height,
        "negative_prompt": negative_prompt,
        "steps": steps,
        "guidance_scale": guidance_scale,
        "seed": seed,
        "webhook_url": webhook_url,
        "reuse": reuse,
    }
    body = validated(m.GenerationCreate, {k: v for k, v in fields.items() if v is not None})
    return body.model_dump(mode="json", exclude_none=True)


def batch_body(
    prompts: list[str],
    *,
    model: str,
    width: int | None = None,
    height: int | None = None,
    negative_prompt: str | None = None,
    steps: int | None = None,
    guidance_scale: float | None = None,
    seed: int | None = None,
    name: str | None = None,
    reuse: bool = True,
) -> dict[str, Any]:
    """A batch of 2-10 prompts; a single prompt becomes a one-item multi-generation."""
    if not 1 <= len(prompts) <= BATCH_MAX_PROMPTS:
        raise ValueError(f"a batch holds 1 to {BATCH_MAX_PROMPTS} prompts, not {len(prompts)}")
    shared = {
        "model": model,
        "width": width,
        "height": height,
        "negative_prompt": negative_prompt,
        "steps": steps,
        "guidance_scale": guidance_scale,
        "seed": seed if len(prompts) > 1 else None,
    }
    if len(prompts) == 1:
        shape: dict[str, Any] = {"prompt": prompts[0]}
        shape.update({"seeds": [seed]} if seed is not None else {"count": 1})
    else:
        shape = {"prompts": prompts}
    fields = {"shared_settings": {k: v for k, v in shared.items() if v is not None}, "reuse": reuse, **shape}
    if name is not None:
        fields["batch_name"] = name
    body = validated(m.BatchCreate, fields)
    return body.model_dump(mode="json", exclude_none=True)


def image_id_of(target: Any) -> str:
    """An image id from an id, an image, or a completed generation."""
    image = getattr(target, "image", None)
    if image is not None:
        return str(image.id)
    if hasattr(target, "status") and image is None:
        raise ValueError(f"generation {getattr(target, 'id', '?')} has no image (status {status_of(target)})")
    return str(getattr(target, "id", target))
