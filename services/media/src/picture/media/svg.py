"""SVG sources: an allow-list sanitiser and a real renderer for the WebP preview.

:func:`sanitise_svg` parses with defusedxml (no DTDs, no entity expansion, no external
entities) and rebuilds the document from an allow-list:

- elements: SVG shapes, paths, text, gradients, patterns, clip paths, masks, filters and
  ``<use>``/``<image>``; anything else (``script``, ``foreignObject``, ``iframe``, elements of
  other namespaces, ...) is dropped with its children;
- attributes: presentation and geometry attributes by name; every ``on*`` event handler and
  anything unknown is dropped; ``href``/``xlink:href`` may only point inside the document
  (``#id``), ``<image>`` may also carry a PNG/JPEG/WebP ``data:`` URI;
- values: ``javascript:``, ``vbscript:`` and ``data:`` (outside ``<image>``) are refused
  everywhere; ``url(...)`` is kept only when it refers to ``#id``; ``<style>`` text with an
  external ``url()``, ``@import`` or ``expression`` is dropped.

:func:`rasterise` renders the sanitised SVG with resvg (resvg-py, a Rust renderer shipped as a
wheel), so the preview is what a browser would draw, not an approximation.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as SafeET
import resvg_py
from defusedxml import DefusedXmlException

from picture.media.errors import PermanentMediaError

SVG = "image/svg+xml"
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
MAX_ELEMENTS = 20_000
# How an SVG is served: never sniffed, never scripted, never shown inline on our origin.
SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "attachment",
}

ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

ALLOWED_ELEMENTS = frozenset(
    [
        "svg",
        "g",
        "defs",
        "symbol",
        "use",
        "title",
        "desc",
        "metadata",
        "switch",
        "path",
        "rect",
        "circle",
        "ellipse",
        "line",
        "polyline",
        "polygon",
        "text",
        "tspan",
        "textPath",
        "linearGradient",
        "radialGradient",
        "stop",
        "pattern",
        "clipPath",
        "mask",
        "marker",
        "image",
        "style",
        "filter",
        "feBlend",
        "feColorMatrix",
        "feComponentTransfer",
        "feComposite",
        "feFlood",
        "feGaussianBlur",
        "feMerge",
        "feMergeNode",
        "feOffset",
        "feFuncR",
        "feFuncG",
        "feFuncB",
        "feFuncA",
        "feDropShadow",
    ]
)

ALLOWED_ATTRIBUTES = frozenset(
    [
        "id",
        "class",
        "style",
        "transform",
        "viewBox",
        "preserveAspectRatio",
        "width",
        "height",
        "x",
        "y",
        "x1",
        "y1",
        "x2",
        "y2",
        "cx",
        "cy",
        "r",
        "rx",
        "ry",
        "d",
        "points",
        "pathLength",
        "fill",
        "fill-opacity",
        "fill-rule",
        "stroke",
        "stroke-width",
        "stroke-opacity",
        "stroke-linecap",
        "stroke-linejoin",
        "stroke-miterlimit",
        "stroke-dasharray",
        "stroke-dashoffset",
        "opacity",
        "color",
        "display",
        "visibility",
        "clip-path",
        "clip-rule",
        "mask",
        "filter",
        "marker-start",
        "marker-mid",
        "marker-end",
        "markerWidth",
        "markerHeight",
        "markerUnits",
        "refX",
        "refY",
        "orient",
        "gradientUnits",
        "gradientTransform",
        "spreadMethod",
        "fx",
        "fy",
        "fr",
        "offset",
        "stop-color",
        "stop-opacity",
        "patternUnits",
        "patternContentUnits",
        "patternTransform",
        "clipPathUnits",
        "maskUnits",
        "maskContentUnits",
        "filterUnits",
        "primitiveUnits",
        "in",
        "in2",
        "result",
        "stdDeviation",
        "dx",
        "dy",
        "mode",
        "operator",
        "k1",
        "k2",
        "k3",
        "k4",
        "values",
        "type",
        "tableValues",
        "slope",
        "intercept",
        "amplitude",
        "exponent",
        "flood-color",
        "flood-opacity",
        "font-family",
        "font-size",
        "font-weight",
        "font-style",
        "font-variant",
        "text-anchor",
        "dominant-baseline",
        "alignment-baseline",
        "baseline-shift",
        "letter-spacing",
        "word-spacing",
        "text-decoration",
        "writing-mode",
        "startOffset",
        "lengthAdjust",
        "textLength",
        "href",
        "version",
        "xml:space",
        "mix-blend-mode",
        "isolation",
        "paint-order",
        "vector-effect",
        "shape-rendering",
        "text-rendering",
        "image-rendering",
        "color-interpolation",
        "color-interpolation-filters",
    ]
)

_BAD_VALUE = re.compile(r"(?:java|vb)script\s*:|expression\s*\(|@import", re.IGNORECASE)
_URL = re.compile(r"url\s*\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
_DATA_IMAGE = re.compile(r"^data:image/(?:png|jpeg|webp);base64,[A-Za-z0-9+/=\s]+$")


def _local_name(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return None, tag


def _safe_value(value: str) -> bool:
    if _BAD_VALUE.search(value):
        return False
    # Any url(...) must refer to an element of this document.
    return all(target.strip().startswith("#") for _, target in _URL.findall(value))


def _clean_attributes(element: ET.Element, name: str) -> None:
    for attr in list(element.attrib):
        ns, local = _local_name(attr)
        value = element.attrib[attr]
        keep = local in ALLOWED_ATTRIBUTES and ns in (None, XLINK_NS, "http://www.w3.org/XML/1998/namespace")
        if keep and local == "href":
            target = value.strip()
            keep = target.startswith("#") or (name == "image" and bool(_DATA_IMAGE.match(target)))
        elif keep:
            keep = _safe_value(value) and "data:" not in value.lower()
        if not keep:
            del element.attrib[attr]


def _clean(element: ET.Element) -> None:
    for child in list(element):
        if not isinstance(child.tag, str):  # comments and processing instructions
            element.remove(child)
            continue
        ns, name = _local_name(child.tag)
        if ns != SVG_NS or name not in ALLOWED_ELEMENTS:
            element.remove(child)
            continue
        if name == "style" and not _safe_value(child.text or ""):
            element.remove(child)
            continue
        _clean_attributes(child, name)
        if name in ("image", "use") and not any(_local_name(a)[1] == "href" for a in child.attrib):
            element.remove(child)  # its reference was external: nothing left to draw
            continue
        _clean(child)


def sanitise_svg(data: bytes) -> bytes:
    """The allow-listed copy of an SVG document, UTF-8 encoded; raises PermanentMediaError."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ET.ParseError, ValueError) as exc:
        raise PermanentMediaError("invalid_svg", "the SVG document is not safe, well-formed XML") from exc
    if root.tag != f"{{{SVG_NS}}}svg":
        raise PermanentMediaError("invalid_svg", "the document is not an SVG image")
    if sum(1 for _ in root.iter()) > MAX_ELEMENTS:
        raise PermanentMediaError("image_too_large", "the SVG document has too many elements")
    _clean_attributes(root, "svg")
    _clean(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def rasterise(clean_svg: bytes, long_side: int) -> bytes:
    """PNG bytes of a sanitised SVG drawn to fit ``long_side`` x ``long_side`` (aspect kept)."""
    try:
        png = resvg_py.svg_to_bytes(
            svg_string=clean_svg.decode("utf-8"),
            width=long_side,
            height=long_side,
            skip_system_fonts=False,
        )
    except ValueError as exc:
        raise PermanentMediaError("invalid_svg", f"the SVG image cannot be drawn: {exc}") from exc
    return bytes(png)
