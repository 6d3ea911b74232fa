"""Image processing: formats, bombs, orientation, metadata, sizes."""

from __future__ import annotations

import hashlib
import io
import struct
import xml.etree.ElementTree as ET
import zlib

import blurhash
import pytest
from PIL import Image

from picture.media import blurhash as own_blurhash
from picture.media.errors import PermanentMediaError
from picture.media.handlers import ProcessingOptions, process
from picture.media.processing import Provenance, process_image


def _png(width: int, height: int, mode: str = "RGB", **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), "red" if mode != "L" else 128).save(buffer, "PNG", **save)
    return buffer.getvalue()


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_png_becomes_webp_of_the_same_size() -> None:
    result = process_image(_png(640, 480))
    original = _decode(result.original.data)
    assert original.format == "WEBP"
    assert original.size == (640, 480)
    assert (result.original.width, result.original.height) == (640, 480)
    assert result.original.size == len(result.original.data)
    assert result.original.sha256 == hashlib.sha256(result.original.data).hexdigest()
    assert result.original.content_type == "image/webp"
    assert result.source_format == "PNG"


def test_long_side_capped_and_thumbnail_256() -> None:
    result = process_image(_png(4000, 1000), max_long_side=2048)
    assert _decode(result.original.data).size == (2048, 512)
    thumb = _decode(result.thumbnail.data)
    assert thumb.format == "WEBP"
    assert thumb.size == (256, 64)
    assert (result.thumbnail.width, result.thumbnail.height) == (256, 64)


def test_small_images_are_not_enlarged() -> None:
    result = process_image(_png(100, 50))
    assert _decode(result.original.data).size == (100, 50)
    assert _decode(result.thumbnail.data).size == (100, 50)


def test_exif_orientation_applied_and_metadata_stripped() -> None:
    source = Image.new("RGB", (200, 100), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (1.0, 2.0, 3.0)}  # GPS IFD
    buffer = io.BytesIO()
    source.save(buffer, "JPEG", exif=exif, comment=b"private comment")
    result = process_image(buffer.getvalue())
    out = _decode(result.original.data)
    assert out.size == (100, 200)
    assert len(out.getexif()) == 0
    assert not {"exif", "xmp", "icc_profile", "comment"} & set(out.info)
    assert b"SecretCam" not in result.original.data
    assert b"Exif" not in result.original.data


def test_png_text_chunks_are_dropped() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "someone-private")
    data = _png(64, 64, pnginfo=info)
    result = process_image(data)
    assert b"someone-private" not in result.original.data


def test_alpha_is_kept() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (32, 32), (255, 0, 0, 128)).save(buffer, "PNG")
    result = process_image(buffer.getvalue())
    assert _decode(result.original.data).mode == "RGBA"


def test_webp_and_jpeg_inputs_are_accepted() -> None:
    for fmt in ("WEBP", "JPEG"):
        buffer = io.BytesIO()
        Image.new("RGB", (50, 40), "green").save(buffer, fmt)
        result = process_image(buffer.getvalue())
        assert _decode(result.original.data).size == (50, 40)
        assert result.source_format == fmt


def _png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)  # far too little data for the claimed size
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(10_000, 10_000), (60_000, 60_000), (1, 50_000_000)])
def test_decompression_bomb_refused_before_decoding(width: int, height: int) -> None:
    with pytest.raises(PermanentMediaError) as info:
        process_image(_png_header_claiming(width, height), max_pixels=40_000_000)
    assert info.value.code == "image_too_large"


def test_pixel_cap_is_configurable() -> None:
    with pytest.raises(PermanentMediaError) as info:
        process_image(_png(100, 100), max_pixels=9_999)
    assert info.value.code == "image_too_large"


def test_text_is_not_an_image() -> None:
    with pytest.raises(PermanentMediaError) as info:
        process_image(b"hello, this is plain text and not an image at all\n" * 10)
    assert info.value.code == "not_an_image"


def test_svg_is_unsupported_unless_allowed() -> None:
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    with pytest.raises(PermanentMediaError) as info:
        process_image(svg)
    assert info.value.code == "unsupported_format"


def test_blurhash_is_computed_and_decodes() -> None:
    buffer = io.BytesIO()
    image = Image.new("RGB", (400, 300), "white")
    image.paste(Image.new("RGB", (200, 300), (200, 20, 20)), (0, 0))
    image.save(buffer, "PNG")
    result = process_image(buffer.getvalue())
    assert result.blurhash is not None
    # 4x3 components: 1 (size) + 1 (max AC) + 4 (DC) + 2 * 11 (AC) characters.
    assert len(result.blurhash) == 28
    assert blurhash.is_valid_blurhash(result.blurhash)
    decoded = blurhash.decode(result.blurhash, 8, 6)
    left, right = decoded.getpixel((0, 3)), decoded.getpixel((7, 3))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert left[0] > left[1] + 60  # red on the left
    assert min(right) > 150  # light on the right


def test_blurhash_encoder_matches_the_reference() -> None:
    image = Image.new("RGB", (32, 24), (200, 30, 30))
    image.paste(Image.new("RGB", (16, 24), (250, 250, 250)), (16, 0))
    # The value the reference C encoder (blurhash-python 1.2.2) gives for this image.
    assert own_blurhash.encode(image, 4, 3) == "L~Q8V:D4V@%gt7aef6j[fQfQfQfQ"
    with pytest.raises(ValueError, match="between 1 and 9"):
        own_blurhash.encode(image, 0, 3)


def _xmp_of(data: bytes) -> str:
    image = _decode(data)
    return bytes(image.info.get("xmp", b"")).decode()


def test_provenance_is_written_into_the_original_only() -> None:
    prompt = 'a "quoted" <cat> & dog\nsecond line'
    result = process_image(_png(300, 200), provenance=Provenance("flux-schnell", prompt, 42))
    xmp = _xmp_of(result.original.data)
    root = ET.fromstring(xmp[xmp.index("<x:xmpmeta") : xmp.index("</x:xmpmeta>") + len("</x:xmpmeta>")])  # noqa: S314
    description = root.find(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    assert description is not None
    ns = "{https://picture.dev/ns/1.0/}"
    assert description.get(f"{ns}model") == "flux-schnell"
    assert description.get(f"{ns}prompt") == prompt
    assert description.get(f"{ns}seed") == "42"
    assert _xmp_of(result.thumbnail.data) == ""
    assert "exif" not in _decode(result.original.data).info


def test_no_provenance_no_xmp() -> None:
    assert _xmp_of(process_image(_png(50, 50)).original.data) == ""
    assert _xmp_of(process_image(_png(50, 50), provenance=Provenance()).original.data) == ""


def test_gif_is_unsupported() -> None:
    buffer = io.BytesIO()
    Image.new("P", (10, 10)).save(buffer, "GIF")
    with pytest.raises(PermanentMediaError) as info:
        process_image(buffer.getvalue())
    assert info.value.code == "unsupported_format"


def test_truncated_png_is_refused() -> None:
    data = _png(300, 300)
    with pytest.raises(PermanentMediaError) as info:
        process_image(data[: len(data) // 2])
    assert info.value.code == "not_an_image"


async def test_provenance_can_be_turned_off() -> None:
    provenance = Provenance("flux-schnell", "a prompt", 1)
    on = await process(_png(40, 40), 2048, ProcessingOptions(), provenance=provenance)
    off = await process(_png(40, 40), 2048, ProcessingOptions(embed_provenance=False), provenance=provenance)
    assert "flux-schnell" in _xmp_of(on.original.data)
    assert _xmp_of(off.original.data) == ""
