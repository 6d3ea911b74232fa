"""How a generation's parameters become a Replicate model input.

:func:`build_input` is pure: it takes the :class:`~picture.common.contracts.ModelSpec`
snapshotted in the command (so the catalog's data drives it) and the user's parameters, and
returns the ``input`` object of the create request. The builder is chosen by the exact model
name (never a substring); unknown models get the generic input.

Rules every model shares (defects of the old product, fixed here):

- a value of 0 is a value: seed 0 and guidance 0 are sent (``is not None``, never truthiness);
- a parameter the model does not take is refused with :class:`UnsupportedParameter`
  (a permanent error naming the field), never silently dropped: a negative prompt for a
  model without ``supports_negative_prompt``, a seed without ``supports_seed``, steps or
  guidance for a model whose input has no such field;
- steps and guidance fall back to the model's defaults and are sent only when known;
- sizes and steps outside the model's bounds are refused (:class:`InputError`);
- image-to-image: ``source_image_url`` (a ``data:image/...;base64,`` URI or an https URL, e.g.
  a signed object URL) only for a model with ``supports_img2img`` whose builder knows how to
  send it; ``strength`` (0..1) only with a source, mapped per model as the old product did:
  flux-dev/flux-krea-dev ``image`` + ``prompt_strength = 1 - strength``, sdxl ``image`` +
  ``prompt_strength = strength``, seedream-4 ``image_input: [source]`` (no strength). No
  strength given: the model's own default.

Each builder sends only fields of its model's Replicate input schema (recorded with the
simulator, tools/replicate-simulator/.../schemas; docs/adr/0012): Replicate ignores unknown
fields silently, so a wrong name would be a parameter lost without an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from picture.common.contracts import GenerationParameters, ModelSpec
from picture.replicate_adapter.errors import InputError, UnsupportedParameter

__all__ = ["BUILDERS", "ModelInput", "build_input", "nearest_aspect_ratio", "reduced_ratio"]

Input = dict[str, Any]

WEBP_90: Input = {"output_format": "webp", "output_quality": 90}
FLUX_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")


@dataclass(frozen=True)
class Resolved:
    """Parameters with the model's defaults applied (None: not sent)."""

    params: GenerationParameters
    steps: int | None
    guidance: float | None


@dataclass(frozen=True)
class ModelInput:
    """How one model's input is built, and which optional parameters it takes."""

    build: Callable[[ModelSpec, Resolved], Input]
    takes_steps: bool = True
    takes_guidance: bool = True
    # Used when the model record lists no aspect ratios (aspect-ratio models only).
    fallback_ratios: tuple[str, ...] = ()
    # Image-to-image: the input fields for (source, strength); None: the model has none.
    img2img: Callable[[str, float | None], Input] | None = None
    takes_strength: bool = True


def _ratio_value(ratio: str) -> float:
    w, _, h = ratio.partition(":")
    return float(w) / float(h)


def nearest_aspect_ratio(width: int, height: int, candidates: Sequence[str]) -> str:
    """The candidate closest to width:height by distance in log space (1:2 and 2:1 are as
    far from 1:1). Ties go to the first candidate listed."""
    target = math.log(width / height)
    return min(candidates, key=lambda r: abs(math.log(_ratio_value(r)) - target))


def reduced_ratio(width: int, height: int) -> str:
    """W:H reduced by their greatest common divisor, e.g. 1344x768 -> "7:4"."""
    d = math.gcd(width, height)
    return f"{width // d}:{height // d}"


def _aspect_ratio(model: ModelSpec, p: GenerationParameters) -> str:
    candidates = model.supported_aspect_ratios or BUILDERS.get(model.name, GENERIC).fallback_ratios
    if not candidates:
        return reduced_ratio(p.width, p.height)
    return nearest_aspect_ratio(p.width, p.height, candidates)


def _sized(r: Resolved) -> Input:
    return {"width": r.params.width, "height": r.params.height}


def _custom_size(r: Resolved) -> Input:
    """Models whose exact width and height apply only with ``aspect_ratio: custom``."""
    return {"aspect_ratio": "custom", **_sized(r)}


def _steps(r: Resolved, key: str = "num_inference_steps") -> Input:
    return {key: r.steps} if r.steps is not None else {}


def _guidance(r: Resolved, key: str = "guidance_scale") -> Input:
    return {key: r.guidance} if r.guidance is not None else {}


def _nearest_size(width: int, height: int, sizes: Sequence[str]) -> str:
    """The listed ``WxH`` size whose shape is closest to width:height (log distance)."""
    target = math.log(width / height)

    def distance(size: str) -> float:
        w, _, h = size.partition("x")
        return abs(math.log(int(w) / int(h)) - target)

    return min(sizes, key=distance)


def _flux_schnell(model: ModelSpec, r: Resolved) -> Input:
    return {"aspect_ratio": _aspect_ratio(model, r.params), **_steps(r), "num_outputs": 1, **WEBP_90}


def _flux_dev(model: ModelSpec, r: Resolved) -> Input:
    return {
        "aspect_ratio": _aspect_ratio(model, r.params),
        **_steps(r),
        **_guidance(r, "guidance"),
        "num_outputs": 1,
        **WEBP_90,
    }


def _flux_pro(model: ModelSpec, r: Resolved) -> Input:
    return {**_custom_size(r), "safety_tolerance": 2, **WEBP_90}


def _sdxl(model: ModelSpec, r: Resolved) -> Input:
    # No output format input: SDXL answers PNG (media converts it).
    return {
        **_sized(r),
        **_steps(r),
        **_guidance(r),
        "refine": "expert_ensemble_refiner",
        "high_noise_frac": 0.8,
    }


def _sdxl_lightning(model: ModelSpec, r: Resolved) -> Input:
    return {**_sized(r), **_steps(r), **_guidance(r), "disable_safety_checker": False}


def _ideogram(model: ModelSpec, r: Resolved) -> Input:
    return {"aspect_ratio": _aspect_ratio(model, r.params), "style_type": "Auto"}


def _imagen(model: ModelSpec, r: Resolved) -> Input:
    return {"aspect_ratio": _aspect_ratio(model, r.params), "output_format": "png"}


def _recraft(model: ModelSpec, r: Resolved) -> Input:
    size = _nearest_size(r.params.width, r.params.height, RECRAFT_SIZES)
    return {"size": size, "style": "realistic_image"}


def _recraft_svg(model: ModelSpec, r: Resolved) -> Input:
    return {"size": _nearest_size(r.params.width, r.params.height, RECRAFT_SIZES), "style": "any"}


def _sd35(model: ModelSpec, r: Resolved) -> Input:
    return {"aspect_ratio": _aspect_ratio(model, r.params), **_guidance(r, "cfg"), "output_format": "webp"}


def _seedream3(model: ModelSpec, r: Resolved) -> Input:
    return {**_custom_size(r), **_guidance(r)}


def _seedream4(model: ModelSpec, r: Resolved) -> Input:
    return {"size": "custom", **_sized(r), "max_images": 1}


def _qwen(model: ModelSpec, r: Resolved) -> Input:
    return {
        "aspect_ratio": _aspect_ratio(model, r.params),
        **_steps(r),
        **_guidance(r, "guidance"),
        "go_fast": True,
        "image_size": "optimize_for_quality",
        **WEBP_90,
        "enhance_prompt": False,
        "disable_safety_checker": False,
    }


def _generic(model: ModelSpec, r: Resolved) -> Input:
    return {**_sized(r), **_steps(r), **_guidance(r)}


def _image_prompt_strength_inverted(source: str, strength: float | None) -> Input:
    if strength is None:
        return {"image": source}
    return {"image": source, "prompt_strength": round(1.0 - strength, 6)}


def _image_prompt_strength(source: str, strength: float | None) -> Input:
    return {"image": source, **({"prompt_strength": strength} if strength is not None else {})}


def _image_input_list(source: str, strength: float | None) -> Input:
    return {"image_input": [source]}


GENERIC = ModelInput(_generic)
MAX_SOURCE_CHARS = 15_000_000  # a data URI of ~11 MB of image bytes
# Recraft's sizes (its size input is one of these).
RECRAFT_SIZES = (
    "1024x1024",
    "1365x1024",
    "1024x1365",
    "1536x1024",
    "1024x1536",
    "1820x1024",
    "1024x1820",
    "1024x2048",
    "2048x1024",
    "1434x1024",
    "1024x1434",
    "1024x1280",
    "1280x1024",
    "1024x1707",
    "1707x1024",
)

#: Builders by exact model name (ModelSpec.name), after each model's Replicate input schema.
BUILDERS: dict[str, ModelInput] = {
    "flux-schnell": ModelInput(_flux_schnell, takes_guidance=False, fallback_ratios=FLUX_RATIOS),
    "flux-dev": ModelInput(_flux_dev, fallback_ratios=FLUX_RATIOS, img2img=_image_prompt_strength_inverted),
    "flux-krea-dev": ModelInput(
        _flux_dev, fallback_ratios=FLUX_RATIOS, img2img=_image_prompt_strength_inverted
    ),
    "flux-1.1-pro": ModelInput(_flux_pro, takes_steps=False, takes_guidance=False),
    "sdxl": ModelInput(_sdxl, img2img=_image_prompt_strength),
    "sdxl-lightning": ModelInput(_sdxl_lightning),
    "ideogram-v3-turbo": ModelInput(
        _ideogram,
        takes_steps=False,
        takes_guidance=False,
        fallback_ratios=("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"),
    ),
    "imagen-4-fast": ModelInput(
        _imagen,
        takes_steps=False,
        takes_guidance=False,
        fallback_ratios=("1:1", "9:16", "16:9", "3:4", "4:3"),
    ),
    "recraft-v3": ModelInput(_recraft, takes_steps=False, takes_guidance=False),
    "recraft-v3-svg": ModelInput(_recraft_svg, takes_steps=False, takes_guidance=False),
    "stable-diffusion-3.5": ModelInput(
        _sd35,
        takes_steps=False,
        fallback_ratios=("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "9:16", "9:21"),
    ),
    "seedream-3": ModelInput(_seedream3, takes_steps=False),
    "seedream-4": ModelInput(
        _seedream4,
        takes_steps=False,
        takes_guidance=False,
        img2img=_image_input_list,
        takes_strength=False,
    ),
    "qwen-image": ModelInput(_qwen, fallback_ratios=("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")),
}


def _given(text: str | None) -> bool:
    return text is not None and text.strip() != ""


def _check_bounds(
    model: ModelSpec, p: GenerationParameters, builder: ModelInput, allow_http_source: bool
) -> None:
    if not model.min_width <= p.width <= model.max_width:
        raise InputError(
            "width", f"width must be between {model.min_width} and {model.max_width} for {model.name}"
        )
    if not model.min_height <= p.height <= model.max_height:
        raise InputError(
            "height",
            f"height must be between {model.min_height} and {model.max_height} for {model.name}",
        )
    if p.steps is not None:
        if not (builder.takes_steps and model.supports_steps):
            raise UnsupportedParameter("steps", model.name)
        if not 1 <= p.steps <= model.max_steps:
            raise InputError("steps", f"steps must be between 1 and {model.max_steps} for {model.name}")
    if p.guidance_scale is not None:
        if not (builder.takes_guidance and model.supports_guidance):
            raise UnsupportedParameter("guidance_scale", model.name)
        low, high = model.guidance_min, model.guidance_max
        if not (math.isfinite(p.guidance_scale) and low <= p.guidance_scale <= high):
            raise InputError(
                "guidance_scale", f"guidance_scale must be between {low:g} and {high:g} for {model.name}"
            )
    if _given(p.negative_prompt) and not model.supports_negative_prompt:
        raise UnsupportedParameter("negative_prompt", model.name)
    if p.seed is not None:
        if not model.supports_seed:
            raise UnsupportedParameter("seed", model.name)
        if not 0 <= p.seed <= model.max_seed:
            raise InputError("seed", f"seed must be between 0 and {model.max_seed} for {model.name}")
    _check_img2img(model, p, builder, allow_http_source)


def _check_img2img(
    model: ModelSpec, p: GenerationParameters, builder: ModelInput, allow_http_source: bool
) -> None:
    if p.source_image_url is None:
        if p.strength is not None:
            raise InputError("strength", "strength needs a source_image_url")
        return
    if builder.img2img is None or not model.supports_img2img:
        raise UnsupportedParameter("source_image_url", model.name)
    source = p.source_image_url
    if len(source) > MAX_SOURCE_CHARS:
        raise InputError("source_image_url", "source_image_url is too large")
    is_data = source.startswith("data:image/") and ";base64," in source[:100]
    is_http = allow_http_source and source.startswith("http://")
    if not (is_data or is_http or source.startswith("https://")):
        raise InputError(
            "source_image_url", "source_image_url must be a data:image/...;base64 URI or an https URL"
        )
    if p.strength is not None:
        if not (builder.takes_strength and model.supports_strength):
            raise UnsupportedParameter("strength", model.name)
        if not (0.0 <= p.strength <= 1.0) or not math.isfinite(p.strength):
            raise InputError("strength", "strength must be between 0 and 1")


def build_input(model: ModelSpec, params: GenerationParameters, *, allow_http_source: bool = False) -> Input:
    """The Replicate ``input`` for ``params`` on ``model``. Raises :class:`InputError`.

    ``allow_http_source``: development only, where sources are the media service's signed
    internal URLs on loopback (the simulator does not fetch them; the real Replicate needs https).
    """
    if not params.prompt.strip():
        raise InputError("prompt", "prompt must not be empty")
    builder = BUILDERS.get(model.name, GENERIC)
    _check_bounds(model, params, builder, allow_http_source)
    resolved = Resolved(
        params=params,
        steps=(params.steps if params.steps is not None else model.default_steps)
        if builder.takes_steps
        else None,
        guidance=(
            params.guidance_scale if params.guidance_scale is not None else model.default_guidance_scale
        )
        if builder.takes_guidance
        else None,
    )
    result: Input = {"prompt": params.prompt, **builder.build(model, resolved)}
    if _given(params.negative_prompt):
        result["negative_prompt"] = params.negative_prompt
    if params.seed is not None:
        result["seed"] = params.seed
    if params.source_image_url is not None and builder.img2img is not None:
        result.update(builder.img2img(params.source_image_url, params.strength))
    return result
