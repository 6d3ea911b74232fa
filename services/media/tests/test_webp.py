"""The WebP container: still pictures kept as they came, metadata replaced by ours."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image, ImageDraw

from picture.media import webp
from picture.media.errors import PermanentMediaError
from picture.media.processing import Provenance, process_image


def _picture(mode: str = "RGB", size: tuple[int, int] = (320, 200)) -> Image.Image:
    image = Image.new(mode, size, (30, 90, 160, 255) if mode == "RGBA" else (30, 90, 160))
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 30, 200, 170), fill=(240, 200, 20, 128) if mode == "RGBA" else (240, 200, 20))
    return image


def _webp(image: Image.Image, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", **save)
    return buffer.getvalue()


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _fourccs(data: bytes) -> list[bytes]:
    chunks = webp._chunks(data)
    assert chunks is not None
    return [fourcc for fourcc, _ in chunks]


def _image_chunk(data: bytes) -> bytes:
    still = webp.parse(data)
    assert still is not None
    return still.image


def test_parse_reads_the_size_of_lossy_and_lossless_pictures() -> None:
    for save in ({"quality": 80}, {"lossless": True}):
        still = webp.parse(_webp(_picture(), **save))
        assert still is not None
        assert (still.width, still.height) == (320, 200)
        assert not still.has_icc and not still.has_exif


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"RIFF\x04\x00\x00\x00WEBP",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        b"RIFF\xff\x00\x00\x00WEBPVP8 \x10\x00\x00\x00",  # RIFF size beyond the data
    ],
)
def test_parse_refuses_what_is_not_a_sound_still_webp(data: bytes) -> None:
    assert webp.parse(data) is None


def test_parse_refuses_animations() -> None:
    frames = [_picture(), _picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert webp.parse(buffer.getvalue()) is None


def test_a_provider_webp_keeps_its_picture_and_gets_only_our_metadata() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Some Camera"  # make, orientation left at 1
    source = _webp(_picture(), quality=90, exif=exif.tobytes(), xmp=b"<x:xmpmeta>theirs</x:xmpmeta>")
    assert b"EXIF" in _fourccs(source) and b"XMP " in _fourccs(source)

    result = process_image(source, provenance=Provenance("flux-schnell", "a cat", 7))

    stored = result.original.data
    assert _image_chunk(stored) == _image_chunk(source)  # the compressed picture, byte for byte
    assert _fourccs(stored) == [b"VP8X", b"VP8 ", b"XMP "]
    decoded = _decode(stored)
    assert decoded.size == (320, 200)
    assert "exif" not in decoded.info
    xmp = bytes(decoded.info["xmp"]).decode()
    assert 'picture:prompt="a cat"' in xmp and "theirs" not in xmp
    assert (result.original.width, result.original.height) == (320, 200)
    assert _decode(result.thumbnail.data).size == (256, 160)
    assert result.source_format == "WEBP"
    assert result.blurhash


def test_without_provenance_the_simple_format_is_written() -> None:
    source = _webp(_picture(), quality=90, xmp=b"<x:xmpmeta>theirs</x:xmpmeta>")
    stored = process_image(source).original.data
    assert _fourccs(stored) == [b"VP8 "]
    assert _decode(stored).size == (320, 200)


@pytest.mark.parametrize("save", [{"quality": 80}, {"lossless": True}])
def test_alpha_survives_the_new_container(save: dict[str, object]) -> None:
    source = _webp(_picture("RGBA"), **save)
    stored = process_image(source, provenance=Provenance("m", "p", 1)).original.data
    chunks = webp._chunks(stored)
    assert chunks is not None
    flags = struct.unpack_from("<I", chunks[0][1], 8)[0]
    assert flags & 0x10  # the VP8X alpha flag
    decoded = _decode(stored)
    assert decoded.mode == "RGBA"
    assert decoded.getpixel((5, 5))[3] == 255 and decoded.getpixel((120, 100))[3] < 255


def test_an_exif_rotation_goes_through_the_full_path() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    source = _webp(_picture(), quality=90, exif=exif.tobytes())
    result = process_image(source)
    assert _decode(result.original.data).size == (200, 320)
    assert _image_chunk(result.original.data) != _image_chunk(source)


def test_a_picture_above_the_cap_is_reencoded_smaller() -> None:
    source = _webp(_picture(size=(1000, 500)), quality=90)
    result = process_image(source, max_long_side=400)
    assert _decode(result.original.data).size == (400, 200)


def test_a_sound_container_around_a_corrupt_picture_is_refused() -> None:
    source = bytearray(_webp(_picture(), quality=90))
    # Past the RIFF header (12), the chunk header (8) and the VP8 frame header (10): sizes and
    # signature stay intact, the compressed data does not.
    for offset in range(30, len(source)):
        source[offset] ^= 0x5A
    assert webp.parse(bytes(source)) is not None
    with pytest.raises(PermanentMediaError):
        process_image(bytes(source))
