"""How a prediction's input becomes an image request: validation against the model's recorded
schema (see :mod:`picture.replicate_simulator.schemas`), sizes, formats, output shape, markers."""

from __future__ import annotations

import logging
import math
import random
import re
from dataclasses import dataclass
from typing import Any, Literal

from picture.replicate_simulator.errors import ProblemError, input_validation_error
from picture.replicate_simulator.schemas import ModelSchema, schema_for, validate

logger = logging.getLogger(__name__)

ImageFormat = Literal["webp", "png", "jpg", "svg"]

#: Flux aspect-ratio sizes.
ASPECT_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
    "3:4": (896, 1152),
    "4:3": (1152, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}
DEFAULT_SIZE = (1024, 1024)
MIN_SIDE = 64
MAX_SIDE = 2048
MAX_OUTPUTS = 4
_FORMATS: dict[str, ImageFormat] = {
    "webp": "webp",
    "png": "png",
    "jpg": "jpg",
    "jpeg": "jpg",
    "svg": "svg",
}
CONTENT_TYPES: dict[ImageFormat, str] = {
    "webp": "image/webp",
    "png": "image/png",
    "jpg": "image/jpeg",
    "svg": "image/svg+xml",
}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\d+)\s*$")
_SLOW_RE = re.compile(r"\[sim:slow=(\d+(?:\.\d+)?)\]")

FAIL_ERROR = "Simulated failure: the model raised an error"
NSFW_ERROR = "NSFW content detected. Try running it again, or try a different prompt."


@dataclass(frozen=True, slots=True)
class Markers:
    """Failure-injection markers found in a prompt."""

    fail: bool = False
    nsfw: bool = False
    hang: bool = False
    slow_ms: float | None = None


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """Everything needed to draw the outputs of one prediction."""

    model: str
    prompt: str
    seed: int
    width: int
    height: int
    fmt: ImageFormat
    quality: int
    num_outputs: int
    single_output: bool

    @property
    def draw_size(self) -> tuple[int, int]:
        """Size actually drawn: each side clamped to 64..2048."""
        return (
            min(max(self.width, MIN_SIDE), MAX_SIDE),
            min(max(self.height, MIN_SIDE), MAX_SIDE),
        )


def parse_markers(prompt: str) -> Markers:
    """Read ``[sim:...]`` markers from a prompt."""
    slow = _SLOW_RE.search(prompt)
    return Markers(
        fail="[sim:fail]" in prompt,
        nsfw="[sim:nsfw]" in prompt,
        hang="[sim:hang]" in prompt,
        slow_ms=float(slow.group(1)) if slow else None,
    )


def _int_field(inp: dict[str, Any], name: str) -> int | None:
    value = inp.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProblemError(422, f"input.{name}: must be an integer")
    return value


def _size(inp: dict[str, Any]) -> tuple[int, int]:
    width = _int_field(inp, "width")
    height = _int_field(inp, "height")
    for name, value in (("width", width), ("height", height)):
        if value is not None and value <= 0:
            raise ProblemError(422, f"input.{name}: must be greater than 0")
    base = DEFAULT_SIZE
    aspect = inp.get("aspect_ratio")
    size = inp.get("size")
    if isinstance(aspect, str) and aspect in ASPECT_SIZES:
        base = ASPECT_SIZES[aspect]
    elif aspect is not None and aspect != "custom" and (width is None or height is None):
        raise ProblemError(422, f"input.aspect_ratio: must be one of {', '.join(ASPECT_SIZES)}")
    elif isinstance(size, str) and (match := _SIZE_RE.match(size)):
        base = (int(match.group(1)), int(match.group(2)))
    return (width or base[0], height or base[1])


def _ratio_size(ratio: str, megapixels: float = 1.0) -> tuple[int, int] | None:
    """About ``megapixels`` at ``W:H`` (sides multiples of 16); None when not a ratio."""
    if ratio in ASPECT_SIZES and megapixels == 1.0:
        return ASPECT_SIZES[ratio]
    w, sep, h = ratio.partition(":")
    try:
        value = float(w) / float(h) if sep else 0.0
    except (ValueError, ZeroDivisionError):
        return None
    if value <= 0:
        return None
    area = megapixels * 1024 * 1024
    return (round(math.sqrt(area * value) / 16) * 16, round(math.sqrt(area / value) / 16) * 16)


def _schema_size(schema: ModelSchema, inp: dict[str, Any]) -> tuple[int, int]:
    """The size the real model would draw: exact width/height where they apply (a model
    without ratio or size inputs, or ``custom``), else its size or aspect ratio."""
    props = schema.properties

    def given(name: str) -> Any:
        return inp.get(name, schema.default(name))

    aspect, size = given("aspect_ratio"), given("size")
    custom = "custom" in (aspect, size) or ("aspect_ratio" not in props and "size" not in props)
    if custom and "width" in props and "height" in props:
        return (int(given("width") or 1024), int(given("height") or 1024))
    if isinstance(size, str) and (match := _SIZE_RE.match(size)):
        return (int(match.group(1)), int(match.group(2)))
    side = {"1K": 1024, "2K": 2048, "4K": 4096}.get(str(size))
    megapixels = float(given("megapixels") or 1) if "megapixels" in props else 1.0
    if isinstance(aspect, str) and (sized := _ratio_size(aspect, megapixels)) is not None:
        if side is None:
            return sized
        scale = side / max(sized)
        return (round(sized[0] * scale), round(sized[1] * scale))
    return (side or 1024, side or 1024)


def _schema_spec(schema: ModelSchema, inp: dict[str, Any], rng: random.Random) -> RenderSpec:
    errors = validate(schema, inp)
    if errors:
        raise input_validation_error(errors)
    ignored = schema.unknown_fields(inp)
    if ignored:
        # Replicate ignores them without a word; the log shows what a mapping lost.
        logger.warning("%s ignores input fields %s", schema.model, ", ".join(ignored))
    prompt = str(inp.get("prompt", schema.default("prompt") or ""))
    seed = inp.get("seed")
    fmt = _FORMATS.get(str(inp.get("output_format", schema.default("output_format") or "")).lower())
    count = inp.get("num_outputs", inp.get("max_images", 1))
    width, height = _schema_size(schema, inp)
    return RenderSpec(
        model=schema.model,
        prompt=prompt,
        seed=int(seed) if seed is not None else rng.randint(0, 2**32 - 1),
        width=width,
        height=height,
        fmt=fmt or _FORMATS[schema.output_format],
        quality=int(inp.get("output_quality", schema.default("output_quality") or 80)),
        num_outputs=1 if schema.output_shape == "single" else int(count),
        single_output=schema.output_shape == "single",
    )


def build_spec(model: str, inp: dict[str, Any], rng: random.Random) -> RenderSpec:
    """Validate ``inp`` for ``model`` and derive the render spec (random seed if absent).

    A model with a recorded schema is validated as Replicate validates it; any other model
    gets the lenient generic checks below."""
    schema = schema_for(model)
    if schema is not None:
        return _schema_spec(schema, inp, rng)
    prompt = inp.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ProblemError(422, "input.prompt: prompt is required")
    seed = _int_field(inp, "seed")
    if seed is None:
        seed = rng.randint(0, 2**32 - 1)
    num_outputs = _int_field(inp, "num_outputs")
    if num_outputs is None:
        num_outputs = 1
    if not 1 <= num_outputs <= MAX_OUTPUTS:
        raise ProblemError(422, f"input.num_outputs: must be between 1 and {MAX_OUTPUTS}")
    quality = _int_field(inp, "output_quality")
    if quality is None:
        quality = 80
    if not 0 <= quality <= 100:
        raise ProblemError(422, "input.output_quality: must be between 0 and 100")
    requested = inp.get("output_format", "webp")
    if not isinstance(requested, str) or requested.lower() not in _FORMATS:
        raise ProblemError(422, f"input.output_format: must be one of {', '.join(_FORMATS)}")
    width, height = _size(inp)
    return RenderSpec(
        model=model,
        prompt=prompt,
        seed=seed,
        width=width,
        height=height,
        fmt=_FORMATS[requested.lower()],
        quality=quality,
        num_outputs=num_outputs,
        single_output=False,
    )
