"""SVG sources: the allow-list sanitiser and the rendered WebP preview."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from picture.media.errors import PermanentMediaError
from picture.media.processing import Provenance, process_image
from picture.media.svg import SVG, sanitise_svg

NS = "http://www.w3.org/2000/svg"

HOSTILE = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     viewBox="0 0 200 100" onload="alert(1)">
  <script>alert(1)</script>
  <style>rect { fill: url(https://evil.example/x) }</style>
  <style>.ok { stroke: black }</style>
  <foreignObject width="10" height="10"><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>
  <a href="javascript:alert(1)"><rect width="5" height="5"/></a>
  <linearGradient id="g"><stop offset="0" stop-color="blue"/></linearGradient>
  <rect id="bg" class="ok" width="200" height="100" fill="url(#g)" onclick="steal()"
        style="fill: url('https://evil.example/track')"/>
  <rect width="10" height="10" fill="javascript:alert(1)"/>
  <use xlink:href="https://evil.example/sprite.svg#icon"/>
  <use href="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="/>
  <use href="#bg"/>
  <image href="file:///etc/passwd" width="10" height="10"/>
  <image href="https://evil.example/pixel.png" width="10" height="10"/>
  <circle cx="150" cy="50" r="40" fill="#00ff00"/>
</svg>"""


def _parse(data: bytes) -> ET.Element:
    return ET.fromstring(data)  # noqa: S314 - our own sanitised output


def test_scripts_handlers_foreign_objects_and_external_refs_are_removed() -> None:
    clean = sanitise_svg(HOSTILE)
    text = clean.decode()
    for needle in (
        "script",
        "onload",
        "onclick",
        "foreignObject",
        "javascript",
        "evil.example",
        "file:",
        "data:",
        "<a",
    ):
        assert needle not in text, needle
    root = _parse(clean)
    tags = [el.tag.split("}")[1] for el in root.iter()]
    assert tags.count("style") == 1 and tags.count("use") == 1 and "image" not in tags
    use = root.find(f"{{{NS}}}use")
    assert use is not None and use.get("href") == "#bg"
    rect = root.find(f"{{{NS}}}rect")
    assert rect is not None
    assert rect.get("fill") == "url(#g)" and rect.get("style") is None
    assert root.find(f"{{{NS}}}circle") is not None


def test_inline_raster_images_are_kept() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(buffer, "PNG")
    import base64

    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    svg = f'<svg xmlns="{NS}" width="4" height="4"><image href="{uri}" width="4" height="4"/></svg>'
    root = _parse(sanitise_svg(svg.encode()))
    image = root.find(f"{{{NS}}}image")
    assert image is not None and image.get("href") == uri


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>',
        b'<?xml version="1.0"?><!DOCTYPE svg SYSTEM "http://evil.example/x.dtd"><svg xmlns="http://www.w3.org/2000/svg"/>',
        b"<svg xmlns='http://www.w3.org/2000/svg'><rect",
        b"<html xmlns='http://www.w3.org/1999/xhtml'><svg/></html>",
        b"<svg><rect/></svg>",  # no SVG namespace
    ],
)
def test_entities_dtds_and_non_svg_documents_are_refused(document: bytes) -> None:
    with pytest.raises(PermanentMediaError) as info:
        sanitise_svg(document)
    assert info.value.code == "invalid_svg"


def test_element_count_is_capped() -> None:
    svg = f'<svg xmlns="{NS}">' + "<g/>" * 20_001 + "</svg>"
    with pytest.raises(PermanentMediaError) as info:
        sanitise_svg(svg.encode())
    assert info.value.code == "image_too_large"


def test_svg_is_stored_sanitised_with_a_rendered_preview() -> None:
    result = process_image(HOSTILE, allow_svg=True, provenance=Provenance(model="recraft-v3-svg"))
    assert result.source_format == "SVG"
    assert result.original.content_type == SVG
    assert result.original.data == sanitise_svg(HOSTILE)
    assert result.preview is not None
    preview = Image.open(io.BytesIO(result.preview.data))
    assert preview.format == "WEBP"
    assert preview.size == (1024, 512)  # viewBox 200x100 drawn to the preview size
    assert (result.original.width, result.original.height) == (1024, 512)
    rgb = preview.convert("RGB")
    # Really rendered: the green circle at (150, 50) in viewBox units, blue gradient behind.
    pixel = rgb.getpixel((768, 256))
    assert isinstance(pixel, tuple) and pixel[1] > 200 and pixel[0] < 60 and pixel[2] < 60
    background = rgb.getpixel((40, 256))
    assert isinstance(background, tuple) and background[2] > 200 and background[1] < 60
    thumbnail = Image.open(io.BytesIO(result.thumbnail.data))
    assert thumbnail.format == "WEBP" and thumbnail.size == (256, 128)
    assert result.blurhash is not None and len(result.blurhash) == 28
