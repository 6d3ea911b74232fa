"""Media processing cost: one 1024x1024 source -> WebP original + 256 px WebP thumbnail.

Compares, in the same process and run, interleaved round by round, for each kind of source:

- ``media``: :func:`picture.media.processing.process_image` (format and bomb checks, EXIF
  orientation, sRGB, metadata strip, WebP, thumbnail, blurhash, provenance XMP). A provider's
  still WebP keeps its compressed picture (only the container is rebuilt); PNG is encoded.
- ``pillow``: bare Pillow producing the same two files the way a simple app does (open, load,
  RGB, WebP at Pillow's default effort, method 4, Lanczos thumbnail) and nothing else.

Sources: ``png-photo`` (a synthetic photo-like PNG: gradients, shapes, noise), ``webp-photo``
(the same picture as a q90 WebP, what Replicate's image models answer), ``webp-simulator``
(what the project's Replicate simulator draws, the side-by-side benchmark's input).

One thread; figures are CPU milliseconds per image of this process (per core; robust to a busy
machine, unlike wall-clock rates). Prints each, the ratio, and the stored sizes.

    .venv/bin/python bench/media/processing.py [--rounds 8] [--per-round 5]
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageFilter

from picture.media.processing import Provenance, process_image
from picture.replicate_simulator.catalog import RenderSpec
from picture.replicate_simulator.images import render

SIZE = 1024
QUALITY = 88


def photo() -> Image.Image:
    gradient = Image.linear_gradient("L").resize((SIZE, SIZE))
    image = Image.merge(
        "RGB", (gradient, gradient.rotate(90), Image.radial_gradient("L").resize((SIZE, SIZE)))
    )
    draw = ImageDraw.Draw(image)
    for i in range(40):
        x, y = (i * 97) % SIZE, (i * 61) % SIZE
        draw.ellipse((x, y, x + 120 + i, y + 80 + i), fill=((i * 53) % 256, (i * 29) % 256, (i * 71) % 256))
    image = image.filter(ImageFilter.GaussianBlur(2))
    noise = Image.effect_noise((SIZE, SIZE), 24).convert("RGB")
    return Image.blend(image, noise, 0.12)


def encoded(image: Image.Image, fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def sources() -> dict[str, bytes]:
    picture = photo()
    simulated = RenderSpec(
        "flux-schnell", "bench 17 a lighthouse at dusk", 7, SIZE, SIZE, "webp", 90, 1, single_output=False
    )
    return {
        "png-photo": encoded(picture, "PNG"),
        "webp-photo": encoded(picture, "WEBP", quality=90),
        "webp-simulator": render(simulated),
    }


def bare_pillow(data: bytes) -> tuple[bytes, bytes]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        rgb = image.convert("RGB")
    original = encoded(rgb, "WEBP", quality=QUALITY, method=4)
    thumbnail = rgb.copy()
    thumbnail.thumbnail((256, 256), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return original, encoded(thumbnail, "WEBP", quality=QUALITY, method=4)


def media(data: bytes) -> tuple[bytes, bytes]:
    result = process_image(
        data, quality=QUALITY, provenance=Provenance(model="flux-schnell", prompt="a benchmark", seed=1)
    )
    return result.original.data, result.thumbnail.data


def cpu_ms(fn: Callable[[bytes], tuple[bytes, bytes]], data: bytes, count: int) -> float:
    """CPU milliseconds per image of this process (one thread: per core)."""
    started = time.process_time()
    for _ in range(count):
        fn(data)
    return 1000 * (time.process_time() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=5)
    args = parser.parse_args()

    print(f"machine: {platform.machine()} python {platform.python_version()} Pillow {Image.__version__}")
    print(f"{args.rounds} rounds x {args.per_round} images each, interleaved; medians; 1 thread; CPU time")
    print("| source | bytes | media ms | pillow ms | media / pillow | stored by media | by pillow |")
    print("|---|---|---|---|---|---|---|")
    for name, data in sources().items():
        ours, theirs = media(data), bare_pillow(data)  # warm-up, and the sizes
        costs: dict[str, list[float]] = {"media": [], "pillow": []}
        for _ in range(args.rounds):
            costs["pillow"].append(cpu_ms(bare_pillow, data, args.per_round))
            costs["media"].append(cpu_ms(media, data, args.per_round))
        mine, bare = statistics.median(costs["media"]), statistics.median(costs["pillow"])
        print(
            f"| {name} | {len(data)} | {mine:.1f} | {bare:.1f} | {mine / bare:.2f} "
            f"| {len(ours[0])} + {len(ours[1])} | {len(theirs[0])} + {len(theirs[1])} |"
        )


if __name__ == "__main__":
    main()
