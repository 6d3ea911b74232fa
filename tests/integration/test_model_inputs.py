"""Every catalog model, through the gateway, with its plainest request (model and prompt) and
its fullest (every parameter it takes, at its upper bounds; a source image where it takes one),
plus the lower bounds: each completes, and the simulator, which validates every input against
the model's recorded Replicate schema, received exactly the expected input (no field the
model would ignore). The model records come from the catalog's seed file, never a copy."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog.seed import load_seed
from picture.common.contracts import ModelSpec
from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token
from picture.replicate_simulator.schemas import schema_for
from tests.integration.conftest import wait_terminal
from tests.integration.test_image_to_image import _upload

SEED: dict[str, dict[str, Any]] = {m["name"]: m for m in load_seed()}
PROMPT = "a lighthouse at dusk"
NEGATIVE = "blurry"
SOURCE = "<the signed URL of the uploaded source>"
WEBP = {"output_format": "webp", "output_quality": 90}

MINIMAL: dict[str, dict[str, Any]] = {
    "flux-schnell": {"aspect_ratio": "1:1", "num_inference_steps": 4, "num_outputs": 1, **WEBP},
    "flux-dev": {"aspect_ratio": "1:1", "num_inference_steps": 28, "guidance": 3.5, "num_outputs": 1, **WEBP},
    "flux-krea-dev": {
        "aspect_ratio": "1:1",
        "num_inference_steps": 28,
        "guidance": 3.0,
        "num_outputs": 1,
        **WEBP,
    },
    "flux-1.1-pro": {"aspect_ratio": "custom", "width": 1024, "height": 1024, "safety_tolerance": 2, **WEBP},
    "sdxl": {
        "width": 1024,
        "height": 1024,
        "num_inference_steps": 30,
        "guidance_scale": 7.5,
        "refine": "expert_ensemble_refiner",
        "high_noise_frac": 0.8,
    },
    "sdxl-lightning": {
        "width": 1024,
        "height": 1024,
        "num_inference_steps": 4,
        "guidance_scale": 0.0,
        "disable_safety_checker": False,
    },
    "ideogram-v3-turbo": {"aspect_ratio": "1:1", "style_type": "Auto"},
    "imagen-4-fast": {"aspect_ratio": "1:1", "output_format": "png"},
    "recraft-v3": {"size": "1024x1024", "style": "realistic_image"},
    "recraft-v3-svg": {"size": "1024x1024", "style": "any"},
    "stable-diffusion-3.5": {"aspect_ratio": "1:1", "cfg": 4.5, "output_format": "webp"},
    "seedream-3": {"aspect_ratio": "custom", "width": 1024, "height": 1024, "guidance_scale": 2.5},
    "seedream-4": {"size": "custom", "width": 2048, "height": 2048, "max_images": 1},
    "qwen-image": {
        "aspect_ratio": "1:1",
        "num_inference_steps": 30,
        "guidance": 4.0,
        "go_fast": True,
        "image_size": "optimize_for_quality",
        **WEBP,
        "enhance_prompt": False,
        "disable_safety_checker": False,
    },
}
MAX_SEED = 2**32 - 1
FULLEST: dict[str, dict[str, Any]] = {
    "flux-schnell": {
        "aspect_ratio": "1:1",
        "num_inference_steps": 4,
        "num_outputs": 1,
        **WEBP,
        "seed": MAX_SEED,
    },
    "flux-dev": {
        "aspect_ratio": "1:1",
        "num_inference_steps": 50,
        "guidance": 10.0,
        "num_outputs": 1,
        **WEBP,
        "seed": MAX_SEED,
        "image": SOURCE,
        "prompt_strength": 0.0,  # strength 1 (move as far as possible from the source)
    },
    "flux-krea-dev": {
        "aspect_ratio": "1:1",
        "num_inference_steps": 50,
        "guidance": 50.0,
        "num_outputs": 1,
        **WEBP,
        "seed": MAX_SEED,
        "image": SOURCE,
        "prompt_strength": 0.0,
    },
    "flux-1.1-pro": {
        "aspect_ratio": "custom",
        "width": 1440,
        "height": 1440,
        "safety_tolerance": 2,
        **WEBP,
        "seed": MAX_SEED,
    },
    "sdxl": {
        "width": 1536,
        "height": 1536,
        "num_inference_steps": 100,
        "guidance_scale": 50.0,
        "refine": "expert_ensemble_refiner",
        "high_noise_frac": 0.8,
        "negative_prompt": NEGATIVE,
        "seed": MAX_SEED,
        "image": SOURCE,
        "prompt_strength": 1.0,
    },
    "sdxl-lightning": {
        "width": 1280,
        "height": 1280,
        "num_inference_steps": 10,
        "guidance_scale": 50.0,
        "disable_safety_checker": False,
        "negative_prompt": NEGATIVE,
        "seed": MAX_SEED,
    },
    "ideogram-v3-turbo": {"aspect_ratio": "1:1", "style_type": "Auto", "seed": 2**31 - 1},
    "imagen-4-fast": {"aspect_ratio": "1:1", "output_format": "png"},
    "recraft-v3": {"size": "1024x1024", "style": "realistic_image"},
    "recraft-v3-svg": {"size": "1024x1024", "style": "any"},
    "stable-diffusion-3.5": {
        "aspect_ratio": "1:1",
        "cfg": 10.0,
        "output_format": "webp",
        "negative_prompt": NEGATIVE,
        "seed": MAX_SEED,
    },
    "seedream-3": {
        "aspect_ratio": "custom",
        "width": 2048,
        "height": 2048,
        "guidance_scale": 10.0,
        "seed": MAX_SEED,
    },
    "seedream-4": {"size": "custom", "width": 4096, "height": 4096, "max_images": 1, "image_input": [SOURCE]},
    "qwen-image": {
        "aspect_ratio": "1:1",
        "num_inference_steps": 50,
        "guidance": 50.0,
        "go_fast": True,
        "image_size": "optimize_for_quality",
        **WEBP,
        "enhance_prompt": False,
        "disable_safety_checker": False,
        "negative_prompt": NEGATIVE,
        "seed": MAX_SEED,
    },
}


def _request(model: ModelSpec, source: str | None, upper: bool) -> dict[str, Any]:
    """Every parameter the record says the model takes, at its upper or lower bounds."""
    body: dict[str, Any] = {
        "model": model.name,
        "prompt": PROMPT,
        "width": model.max_width if upper else model.min_width,
        "height": model.max_height if upper else model.min_height,
    }
    if model.supports_steps:
        body["steps"] = model.max_steps if upper else 1
    if model.supports_guidance:
        body["guidance_scale"] = model.guidance_max if upper else model.guidance_min
    if model.supports_seed:
        body["seed"] = model.max_seed if upper else 0
    if model.supports_negative_prompt:
        body["negative_prompt"] = NEGATIVE
    if source is not None:
        body["source_image_id"] = source
        if model.supports_strength:
            body["strength"] = model.strength_max if upper else model.strength_min
    return body


async def _received(stack: Stack, db: AsyncEngine, generation_id: str) -> dict[str, Any]:
    """The input of the generation's prediction, as the simulator reports it (GET)."""
    async with db.connect() as conn:
        prediction_id = (
            await conn.execute(
                text("SELECT prediction_id FROM adapter.predictions WHERE generation_id = :id"),
                {"id": uuid.UUID(generation_id)},
            )
        ).scalar_one()
    async with httpx.AsyncClient(headers={"Authorization": "Bearer simulator-token"}) as sim:
        prediction: dict[str, Any] = (
            (await sim.get(f"{stack.simulator_url}/v1/predictions/{prediction_id}")).raise_for_status().json()
        )
    received: dict[str, Any] = prediction["input"]
    return received


def _placeholder(received: dict[str, Any]) -> dict[str, Any]:
    """The signed source URL is new each time: compare it by shape."""
    shown = dict(received)
    for key in ("image", "image_input"):
        value = shown.get(key)
        urls = value if isinstance(value, list) else [value]
        if value is not None:
            assert all("/objects/" in u and "sig=" in u for u in urls), value
            shown[key] = [SOURCE] * len(urls) if isinstance(value, list) else SOURCE
    return shown


async def _one_model(stack: Stack, db: AsyncEngine, name: str) -> None:
    record = ModelSpec(**SEED[name])
    token = mint_token(stack.secrets["PICTURE_JWT_SECRET"], uuid.uuid4())
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as api:
        source = await _upload(api) if record.supports_img2img else None
        bodies = {
            "minimal": {"model": name, "prompt": PROMPT},
            "fullest": _request(record, source, upper=True),
            "lowest": _request(record, source, upper=False),
        }
        accepted = {}
        for kind, body in bodies.items():
            response = await api.post("/v1/generations", json=body)
            assert response.status_code == 202, (name, kind, response.text)
            accepted[kind] = response.json()["id"]
        schema = schema_for(record.replicate_id)
        assert schema is not None, name
        for kind, generation_id in accepted.items():
            done = await wait_terminal(api, generation_id, timeout=120)
            assert done["status"] == "completed", (name, kind, done.get("error_message"))
            received = await _received(stack, db, generation_id)
            assert schema.unknown_fields(received) == [], (name, kind)  # nothing Replicate ignores
            if kind == "minimal":
                assert received == {"prompt": PROMPT, **MINIMAL[name]}, name
            elif kind == "fullest":
                assert _placeholder(received) == {"prompt": PROMPT, **FULLEST[name]}, name


@pytest.mark.parametrize("group", [sorted(SEED)[0::2], sorted(SEED)[1::2]], ids=["half-1", "half-2"])
async def test_every_model_takes_its_plainest_and_its_fullest_request(
    stack: Stack, db: AsyncEngine, group: list[str]
) -> None:
    await asyncio.gather(*(_one_model(stack, db, name) for name in group))


def test_the_expectations_cover_every_catalog_model() -> None:
    assert set(MINIMAL) == set(FULLEST) == set(SEED)
