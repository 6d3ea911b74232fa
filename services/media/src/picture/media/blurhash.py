"""A BlurHash encoder (https://blurha.sh): a ~30 character placeholder of a picture.

Small enough to own: the published wheel's encoder reads pixels through a Pillow API that is
deprecated (a warning, so an error under our test policy) and closes the caller's image. This
follows the reference C encoder; callers pass a small image (the cost grows with the pixels),
and the test suite checks the output with the reference decoder.
"""

from __future__ import annotations

import math

from PIL import Image

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_TO_LINEAR = [(v / 12.92) if (v := i / 255) <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for i in range(256)]


def _base83(value: int, length: int) -> str:
    return "".join(_ALPHABET[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _sign_pow(value: float, exponent: float) -> float:
    return math.copysign(abs(value) ** exponent, value)


def encode(image: Image.Image, x_components: int = 4, y_components: int = 3) -> str:
    """The BlurHash of ``image`` with ``x_components`` x ``y_components`` (1..9 each)."""
    if not (1 <= x_components <= 9 and 1 <= y_components <= 9):
        raise ValueError("blurhash components must be between 1 and 9")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    data = rgb.tobytes()
    linear = [_TO_LINEAR[b] for b in data]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_components)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_components)]
    # The basis is separable (cos_x * cos_y): sum each row against every cos_x first, then the
    # row sums against every cos_y; the same factors for a fraction of the multiplications.
    row_sums: list[list[tuple[float, float, float]]] = [[] for _ in range(x_components)]
    for y in range(height):
        row = linear[y * width * 3 : (y + 1) * width * 3]
        reds, greens, blues = row[0::3], row[1::3], row[2::3]
        for i in range(x_components):
            weights = cos_x[i]
            row_sums[i].append(
                (
                    sum(w * v for w, v in zip(weights, reds, strict=True)),
                    sum(w * v for w, v in zip(weights, greens, strict=True)),
                    sum(w * v for w, v in zip(weights, blues, strict=True)),
                )
            )
    factors: list[tuple[float, float, float]] = []
    for j in range(y_components):
        for i in range(x_components):
            scale = (1 if i == 0 and j == 0 else 2) / (width * height)
            r = g = b = 0.0
            for weight, (sr, sg, sb) in zip(cos_y[j], row_sums[i], strict=True):
                r += weight * sr
                g += weight * sg
                b += weight * sb
            factors.append((r * scale, g * scale, b * scale))
    dc, ac = factors[0], factors[1:]
    result = _base83((x_components - 1) + (y_components - 1) * 9, 1)
    if ac:
        actual_max = max(abs(v) for factor in ac for v in factor)
        quantised = max(0, min(82, math.floor(actual_max * 166 - 0.5)))
        max_value = (quantised + 1) / 166
        result += _base83(quantised, 1)
    else:
        max_value = 1.0
        result += _base83(0, 1)
    result += _base83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4)
    for factor in ac:
        q = [max(0, min(18, math.floor(_sign_pow(v / max_value, 0.5) * 9 + 9.5))) for v in factor]
        result += _base83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return result
