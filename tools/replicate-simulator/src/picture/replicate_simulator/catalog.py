"""How each model's input becomes an image request: sizes, formats, output shape, markers."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Literal

from picture.replicate_simulator.errors import ProblemError

ImageFormat = Literal["webp", "png", "jpg", "svg"]

#: Models whose real counterpart returns one URL string instead of a list.
SINGLE_OUTPUT_MODELS: frozenset[str] = frozenset(
    {
        "black-forest-labs/flux-1.1-pro",
        "ideogram-ai/ideogram-v3-turbo",
        "google/imagen-4-fast",
        "recraft-ai/recraft-v3",
        "recraft-ai/recraft-v3-svg",
        "stability-ai/stable-diffusion-3.5",
    }
)
SVG_MODELS: frozenset[str] = frozenset({"recraft-ai/recraft-v3-svg"})
PNG_MODELS: frozenset[str] = frozenset({"google/imagen-4-fast"})

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


def build_spec(model: str, inp: dict[str, Any], rng: random.Random) -> RenderSpec:
    """Validate ``inp`` for ``model`` and derive the render spec (random seed if absent)."""
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
    fmt = _FORMATS[requested.lower()]
    if model in SVG_MODELS:
        fmt = "svg"
    elif model in PNG_MODELS:
        fmt = "png"
    width, height = _size(inp)
    single = model in SINGLE_OUTPUT_MODELS
    return RenderSpec(
        model=model,
        prompt=prompt,
        seed=seed,
        width=width,
        height=height,
        fmt=fmt,
        quality=quality,
        num_outputs=1 if single else num_outputs,
        single_output=single,
    )
