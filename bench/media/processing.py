"""Media processing throughput: 1024x1024 PNG -> WebP original + 256 px WebP thumbnail.

Compares, in the same process and run, interleaved round by round:

- ``media``: :func:`picture.media.processing.process_image` (format check, bomb check, EXIF
  orientation, sRGB, metadata strip, WebP, thumbnail, blurhash, provenance XMP);
- ``pillow``: bare Pillow doing the same encodes (open, load, RGB, WebP q88 method 4, Lanczos
  thumbnail, WebP) and nothing else.

One thread; rates are images per CPU second of the process, i.e. per core, and do not drift
when other work shares the machine (wall-clock rates on a shared 2-core box do). The source is
a synthetic photo-like picture (gradients, shapes, noise), so PNG and WebP sizes are those of a
realistic image, not of a flat colour. Prints the rate of each, the ratio, and the storage
saving of the WebP original against the PNG.

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

SIZE = 1024
QUALITY = 88


def source_png() -> bytes:
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
    image = Image.blend(image, noise, 0.12)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def bare_pillow(data: bytes) -> tuple[bytes, bytes]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        rgb = image.convert("RGB")
    original = io.BytesIO()
    rgb.save(original, format="WEBP", quality=QUALITY, method=4)
    thumbnail = rgb.copy()
    thumbnail.thumbnail((256, 256), Image.Resampling.LANCZOS, reducing_gap=3.0)
    small = io.BytesIO()
    thumbnail.save(small, format="WEBP", quality=QUALITY, method=4)
    return original.getvalue(), small.getvalue()


def media(data: bytes) -> tuple[bytes, bytes]:
    result = process_image(
        data, quality=QUALITY, provenance=Provenance(model="flux-schnell", prompt="a benchmark", seed=1)
    )
    return result.original.data, result.thumbnail.data


def timed(fn: Callable[[bytes], tuple[bytes, bytes]], data: bytes, count: int) -> float:
    """Images per CPU second of this process (one thread: per core; robust to a busy machine)."""
    started = time.process_time()
    for _ in range(count):
        fn(data)
    return count / (time.process_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=5)
    args = parser.parse_args()

    data = source_png()
    media_webp, media_thumb = media(data)  # warm-up, and the sizes
    bare_webp, _ = bare_pillow(data)
    rates: dict[str, list[float]] = {"media": [], "pillow": []}
    for _ in range(args.rounds):
        rates["pillow"].append(timed(bare_pillow, data, args.per_round))
        rates["media"].append(timed(media, data, args.per_round))
    median = {name: statistics.median(r) for name, r in rates.items()}
    print(f"machine: {platform.machine()} python {platform.python_version()} Pillow {Image.__version__}")
    print(f"{args.rounds} rounds x {args.per_round} images each, interleaved; medians; 1 thread; CPU time")
    print(f"source: {SIZE}x{SIZE} PNG, {len(data)} bytes")
    for name, rate in median.items():
        print(f"{name:6}: {rate:6.2f} images/CPU-s (min {min(rates[name]):.2f}, max {max(rates[name]):.2f})")
    print(f"ratio media/pillow: {median['media'] / median['pillow']:.3f} (target >= 0.9)")
    saving = 1 - len(media_webp) / len(data)
    print(
        f"stored: original WebP {len(media_webp)} bytes + thumbnail {len(media_thumb)} bytes "
        f"(bare Pillow WebP {len(bare_webp)}); original saves {saving:.1%} against the PNG"
    )


if __name__ == "__main__":
    main()
