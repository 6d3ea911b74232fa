"""Checks of a generation request against its model record (the one source of limits)."""

from __future__ import annotations

from picture.common.contracts import GenerationParameters, ModelSpec
from picture.gateway.errors import InvalidField
from picture.gateway.schemas import GenerationCreate


def apply_model(model: ModelSpec, body: GenerationCreate) -> GenerationParameters:
    """Fill in the model's defaults and refuse what the model cannot do (422, field named)."""
    if not model.is_active:
        raise InvalidField("model", f"model {model.name!r} is not available")
    width = body.width if body.width is not None else model.default_width
    height = body.height if body.height is not None else model.default_height
    if not model.min_width <= width <= model.max_width:
        raise InvalidField(
            "width", f"width must be between {model.min_width} and {model.max_width} for {model.name}"
        )
    if not model.min_height <= height <= model.max_height:
        raise InvalidField(
            "height",
            f"height must be between {model.min_height} and {model.max_height} for {model.name}",
        )
    if body.steps is not None:
        if not model.supports_steps:
            raise InvalidField("steps", f"{model.name} does not take a number of steps")
        if body.steps > model.max_steps:
            raise InvalidField("steps", f"steps must be at most {model.max_steps} for {model.name}")
    if body.guidance_scale is not None:
        if not model.supports_guidance:
            raise InvalidField("guidance_scale", f"{model.name} does not take a guidance scale")
        if not model.guidance_min <= body.guidance_scale <= model.guidance_max:
            raise InvalidField(
                "guidance_scale",
                f"guidance_scale must be between {model.guidance_min:g} and {model.guidance_max:g}"
                f" for {model.name}",
            )
    if body.negative_prompt is not None and not model.supports_negative_prompt:
        raise InvalidField("negative_prompt", f"{model.name} does not support a negative prompt")
    if body.seed is not None:
        if not model.supports_seed:
            raise InvalidField("seed", f"{model.name} does not support a seed")
        if body.seed > model.max_seed:
            raise InvalidField("seed", f"seed must be at most {model.max_seed} for {model.name}")
    if body.source_image_id is not None and not model.supports_img2img:
        raise InvalidField("source_image_id", f"{model.name} does not take a source image")
    if body.strength is not None:
        if body.source_image_id is None:
            raise InvalidField("strength", "strength needs a source_image_id")
        if not model.supports_strength:
            raise InvalidField("strength", f"{model.name} does not take a strength")
        if not model.strength_min <= body.strength <= model.strength_max:
            raise InvalidField(
                "strength",
                f"strength must be between {model.strength_min} and {model.strength_max} for {model.name}",
            )
    # A default is filled in only for what the model takes (the adapter refuses the rest).
    steps = body.steps if body.steps is not None else model.default_steps
    guidance = body.guidance_scale if body.guidance_scale is not None else model.default_guidance_scale
    strength = body.strength if body.strength is not None else model.default_strength
    return GenerationParameters(
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        width=width,
        height=height,
        steps=steps if model.supports_steps else None,
        guidance_scale=guidance if model.supports_guidance else None,
        seed=body.seed,
        strength=strength if body.source_image_id is not None and model.supports_strength else None,
    )
