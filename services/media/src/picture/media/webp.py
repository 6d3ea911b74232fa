"""The WebP container (RIFF), read and written without touching the compressed picture.

A provider's WebP is already what we store. Decoding and encoding it again costs most of the
CPU of an ingest and loses quality (a second lossy pass), so :func:`rewrap` keeps the image
bitstream (``VP8 ``/``VP8L`` and ``ALPH`` chunks) as it came and rebuilds only the container
around it: every metadata chunk of the source (EXIF, XMP, ICC, unknown chunks) is dropped, and
our own XMP packet is added. :func:`parse` says whether a file is a plain still WebP that can be
kept that way; anything else (animation, an ICC profile to convert, a malformed container) goes
through a full decode and encode instead.

Layout reference: https://developers.google.com/speed/webp/docs/riff_container
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_IMAGE_CHUNKS = (b"VP8 ", b"VP8L")
_VP8X_ALPHA = 0x10
_VP8X_XMP = 0x04


@dataclass(frozen=True)
class StillWebP:
    """A still WebP's picture chunks, ready to be put in a new container."""

    width: int
    height: int
    image: bytes  # the whole VP8 or VP8L chunk (header, payload, padding)
    alpha: bytes = b""  # the whole ALPH chunk, when the lossy picture has one
    lossless_alpha: bool = False  # a VP8L picture that uses its alpha channel
    has_icc: bool = False
    has_exif: bool = False


def _chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """(fourcc, whole chunk) pairs of a RIFF WEBP file, or None when the container is broken."""
    if len(data) < 20 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    riff_size = struct.unpack_from("<I", data, 4)[0]
    end = 8 + riff_size
    if end > len(data) or riff_size % 2:
        return None
    chunks: list[tuple[bytes, bytes]] = []
    offset = 12
    while offset < end:
        if offset + 8 > end:
            return None
        fourcc = data[offset : offset + 4]
        size = struct.unpack_from("<I", data, offset + 4)[0]
        stop = offset + 8 + size + (size & 1)
        if stop > end:
            return None
        chunks.append((fourcc, data[offset:stop]))
        offset = stop
    return chunks


def _vp8_size(chunk: bytes) -> tuple[int, int] | None:
    payload = chunk[8:]
    if len(payload) < 10 or payload[3:6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack_from("<HH", payload, 6)
    return width & 0x3FFF, height & 0x3FFF


def _vp8l_header(chunk: bytes) -> int | None:
    """The 32 bits after a VP8L chunk's signature: width-1, height-1, alpha_is_used, version."""
    payload = chunk[8:]
    if len(payload) < 5 or payload[0] != 0x2F:
        return None
    return int.from_bytes(payload[1:5], "little")


def _vp8l_size(chunk: bytes) -> tuple[int, int] | None:
    bits = _vp8l_header(chunk)
    if bits is None:
        return None
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1


def parse(data: bytes) -> StillWebP | None:
    """The picture chunks of a still WebP, or None (not WebP, animated, or malformed)."""
    chunks = _chunks(data)
    if not chunks:
        return None
    kinds = [fourcc for fourcc, _ in chunks]
    if b"ANIM" in kinds or b"ANMF" in kinds:
        return None
    images = [(fourcc, chunk) for fourcc, chunk in chunks if fourcc in _IMAGE_CHUNKS]
    if len(images) != 1:
        return None
    fourcc, image = images[0]
    size = _vp8_size(image) if fourcc == b"VP8 " else _vp8l_size(image)
    if size is None or 0 in size:
        return None
    alphas = [chunk for kind, chunk in chunks if kind == b"ALPH"]
    if len(alphas) > 1 or (alphas and fourcc != b"VP8 "):
        return None
    if kinds[0] == b"VP8X":
        header = chunks[0][1]
        if len(header) < 18:
            return None
        canvas = (int.from_bytes(header[12:15], "little") + 1, int.from_bytes(header[15:18], "little") + 1)
        if canvas != size:
            return None
    return StillWebP(
        width=size[0],
        height=size[1],
        image=image,
        alpha=alphas[0] if alphas else b"",
        lossless_alpha=fourcc == b"VP8L" and bool(((_vp8l_header(image) or 0) >> 28) & 1),
        has_icc=b"ICCP" in kinds,
        has_exif=b"EXIF" in kinds,
    )


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")


def rewrap(still: StillWebP, xmp: bytes = b"") -> bytes:
    """A WebP holding ``still``'s picture as it came, with ``xmp`` as its only metadata."""
    if not xmp and not still.alpha:
        body = still.image  # the simple format: nothing but the picture (VP8L carries its alpha)
    else:
        has_alpha = bool(still.alpha) or still.lossless_alpha
        flags = (_VP8X_ALPHA if has_alpha else 0) | (_VP8X_XMP if xmp else 0)
        canvas = (still.width - 1).to_bytes(3, "little") + (still.height - 1).to_bytes(3, "little")
        header = _chunk(b"VP8X", struct.pack("<I", flags) + canvas)
        body = header + still.alpha + still.image + (_chunk(b"XMP ", xmp) if xmp else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body
