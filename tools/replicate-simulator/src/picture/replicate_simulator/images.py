"""Deterministic placeholder images (raster via Pillow, or SVG) for finished predictions.

The picture depends only on (model, prompt, seed, width, height): a two-colour gradient,
a few shapes and the prompt text. Call :func:`render` off the event loop
(``asyncio.to_thread``); it is CPU bound.
"""

from __future__ import annotations

import functools
import hashlib
import io
import random
import textwrap
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFont, ImageOps

from picture.replicate_simulator.catalog import RenderSpec

Colour = tuple[int, int, int]


def _rng_for(spec: RenderSpec, index: int) -> random.Random:
    width, height = spec.draw_size
    key = f"{spec.model}|{spec.prompt}|{spec.seed + index}|{width}|{height}"
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _colour(rng: random.Random) -> Colour:
    return (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))


def _hex(colour: Colour) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _wrapped_prompt(prompt: str, width: int, char_px: int) -> list[str]:
    per_line = max(8, width // max(char_px, 1))
    return textwrap.wrap(prompt, per_line)[:6]


@functools.lru_cache(maxsize=16)
def _gradient(width: int, height: int, *, rotated: bool) -> Image.Image:
    """A grey ramp of the size, top to bottom (or left to right); the same for every picture."""
    gradient = Image.linear_gradient("L").resize((width, height))
    if rotated:
        gradient = gradient.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    return gradient


def _draw_raster(spec: RenderSpec, index: int) -> Image.Image:
    rng = _rng_for(spec, index)
    width, height = spec.draw_size
    top, bottom = _colour(rng), _colour(rng)
    image = ImageOps.colorize(_gradient(width, height, rotated=rng.random() < 0.5), black=top, white=bottom)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 7)):
        x0, y0 = rng.randint(0, width - 1), rng.randint(0, height - 1)
        size = rng.randint(min(width, height) // 10, min(width, height) // 3)
        box = (x0, y0, x0 + size, y0 + size)
        fill = _colour(rng)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=fill)
        else:
            draw.rectangle(box, fill=fill)
    font_size = max(10, min(width, height) // 24)
    font = ImageFont.load_default(size=font_size)
    y = font_size
    for line in _wrapped_prompt(spec.prompt, width - 2 * font_size, font_size * 6 // 10):
        draw.text((font_size + 2, y + 2), line, fill=(0, 0, 0), font=font)
        draw.text((font_size, y), line, fill=(255, 255, 255), font=font)
        y += font_size * 5 // 4
    return image


def _draw_svg(spec: RenderSpec, index: int) -> bytes:
    rng = _rng_for(spec, index)
    width, height = spec.draw_size
    top, bottom = _colour(rng), _colour(rng)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        '<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{_hex(top)}"/>'
        f'<stop offset="1" stop-color="{_hex(bottom)}"/></linearGradient></defs>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="url(#bg)"/>',
    ]
    for _ in range(rng.randint(3, 7)):
        x, y = rng.randint(0, width - 1), rng.randint(0, height - 1)
        size = rng.randint(min(width, height) // 10, min(width, height) // 3)
        fill = _hex(_colour(rng))
        if rng.random() < 0.5:
            parts.append(f'<circle cx="{x}" cy="{y}" r="{size // 2}" fill="{fill}"/>')
        else:
            parts.append(f'<rect x="{x}" y="{y}" width="{size}" height="{size}" fill="{fill}"/>')
    font_size = max(10, min(width, height) // 24)
    y_text = font_size * 2
    for line in _wrapped_prompt(spec.prompt, width - 2 * font_size, font_size * 6 // 10):
        parts.append(
            f'<text x="{font_size}" y="{y_text}" font-family="sans-serif" '
            f'font-size="{font_size}" fill="#ffffff">{escape(line)}</text>'
        )
        y_text += font_size * 5 // 4
    parts.append("</svg>")
    return "\n".join(parts).encode("utf-8")


def render(spec: RenderSpec, index: int = 0) -> bytes:
    """Encode output number ``index`` of ``spec`` (uses seed + index) in ``spec.fmt``."""
    if spec.fmt == "svg":
        return _draw_svg(spec, index)
    image = _draw_raster(spec, index)
    buffer = io.BytesIO()
    # The least encoder effort: this stands in for Replicate's machines, and its CPU is taken
    # from the services' on a benchmark machine (a valid file of the format is all we owe).
    if spec.fmt == "png":
        image.save(buffer, format="PNG", compress_level=1)
    elif spec.fmt == "jpg":
        image.save(buffer, format="JPEG", quality=spec.quality)
    else:
        image.save(buffer, format="WEBP", quality=spec.quality, method=0)
    return buffer.getvalue()
