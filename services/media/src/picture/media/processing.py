"""Turning downloaded bytes into what we store: a clean WebP and a WebP thumbnail.

Synchronous and CPU bound: callers run :func:`process_image` off the event loop
(``asyncio.to_thread``). Steps:

1. detect the format from the content: PNG, JPEG and WebP are accepted; SVG and other image
   formats are "unsupported", anything else is "not an image";
2. refuse decompression bombs from the header alone, before any pixel is decoded
   (``max_pixels``; Pillow's own DecompressionBombWarning is turned into an error too);
3. apply the EXIF orientation, convert to sRGB when an ICC profile is attached, then drop all
   metadata (EXIF, XMP, ICC, text chunks): the output carries only what the encoder writes;
4. cap the long side, encode WebP; make a thumbnail by integer reduction (a box average, the
   cheapest good downscale) and Lanczos for what remains;
5. a blurhash of the thumbnail (a ~30 character placeholder clients draw while loading);
6. optionally, provenance (model, prompt, seed) as an XMP packet we write ourselves into the
   stored original (all other metadata is gone by then).

A still WebP that needs no change of pixels (within the size cap, no ICC profile to convert, no
EXIF rotation) keeps its compressed picture as it came: only its container is rebuilt, without
the source's metadata and with our XMP (:mod:`picture.media.webp`). It is still decoded in full,
which proves the bitstream is sound and gives the thumbnail. Most providers answer WebP, so most
ingests skip the original's encode, the dearest step, and a second lossy pass.

SVG sources (``recraft-v3-svg``) are sanitised (:mod:`picture.media.svg`) and stored as
``image/svg+xml``; a WebP preview rendered from the sanitised SVG by resvg (and its thumbnail)
go through the raster steps above.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from xml.sax.saxutils import escape

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from picture.media import blurhash, webp
from picture.media.errors import PermanentMediaError

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
WEBP = "image/webp"
# libwebp's effort (0-6). 2 costs about half of Pillow's default 4 and, measured on photo-like
# and flat pictures, gives files between 4 % smaller and 20 % larger (docs/benchmarks.md).
DEFAULT_WEBP_METHOD = 2
_EXIF_ORIENTATION = 0x0112

# Magic numbers of image formats we recognise but do not accept.
_OTHER_IMAGE_MAGIC = (
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x00\x00\x01\x00",
    b"8BPS",
)


@dataclass(frozen=True)
class Rendition:
    data: bytes
    width: int
    height: int
    sha256: str
    content_type: str = WEBP

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Provenance:
    """What made the picture, embedded as XMP in the stored original."""

    model: str | None = None
    prompt: str | None = None
    seed: int | None = None

    @property
    def empty(self) -> bool:
        return self.model is None and self.prompt is None and self.seed is None


@dataclass(frozen=True)
class ProcessedImage:
    original: Rendition
    thumbnail: Rendition
    source_format: str
    blurhash: str | None = None
    # SVG sources: the rasterised WebP of the sanitised original.
    preview: Rendition | None = None


def looks_like_svg(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<?xml", b"<svg", b"<!doctype svg")) and b"<svg" in data[:4096].lower()


def _looks_like_other_image(data: bytes) -> bool:
    if data.startswith(_OTHER_IMAGE_MAGIC):
        return True
    return data[4:12] in (b"ftypavif", b"ftypheic", b"ftypheix", b"ftypmif1")


def open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open (header only) an accepted format within the pixel cap, or raise."""
    if looks_like_svg(data):
        raise PermanentMediaError("unsupported_format", "SVG images are not accepted here")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PermanentMediaError("image_too_large", "the image has too many pixels") from exc
    except UnidentifiedImageError as exc:
        if _looks_like_other_image(data):
            raise PermanentMediaError("unsupported_format", "unsupported image format") from exc
        raise PermanentMediaError("not_an_image", "the source is not an image") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise PermanentMediaError("not_an_image", "the source is not a readable image") from exc
    width, height = image.size
    if width <= 0 or height <= 0 or width * height > max_pixels:
        image.close()
        raise PermanentMediaError(
            "image_too_large", f"the image has {width}x{height} pixels, above the limit"
        )
    return image


def _to_srgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"))
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: keep the pixels as they are
    return converted if converted is not None else image


def _normalise_mode(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    target = "RGBA" if has_alpha else "RGB"
    if image.mode == target:
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: scale to 8 bits before converting.
        image = image.point(lambda v: v / 256).convert("L")
    return image.convert(target)


XMP_TEMPLATE = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:picture="https://picture.dev/ns/1.0/"{attributes}/>
</rdf:RDF></x:xmpmeta>
<?xpacket end="r"?>"""


def provenance_xmp(provenance: Provenance) -> bytes:
    """The XMP packet naming the model, prompt and seed (XML-escaped attribute values)."""
    fields = {"model": provenance.model, "prompt": provenance.prompt, "seed": provenance.seed}
    entities = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
    attributes = "".join(
        f'\n  picture:{name}="{escape(str(value), entities)}"'
        for name, value in fields.items()
        if value is not None
    )
    return XMP_TEMPLATE.format(attributes=attributes).encode()


def _rendition(data: bytes, width: int, height: int) -> Rendition:
    return Rendition(data, width, height, hashlib.sha256(data).hexdigest())


def _encode(image: Image.Image, quality: int, method: int, xmp: bytes = b"") -> Rendition:
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=quality, method=method, exif=b"", xmp=xmp)
    return _rendition(buffer.getvalue(), image.width, image.height)


def _capped(image: Image.Image, long_side: int, reducing_gap: float = 3.0) -> Image.Image:
    """``image`` with its long side at most ``long_side``. ``reducing_gap`` 1.0 reduces by the
    largest integer factor first (box average: cheap) and resamples only what remains."""
    if max(image.size) <= long_side:
        return image
    copy = image.copy()
    copy.thumbnail((long_side, long_side), Image.Resampling.LANCZOS, reducing_gap=reducing_gap)
    return copy


def _thumbnail(image: Image.Image, long_side: int) -> Image.Image:
    return _capped(image, max(1, long_side), reducing_gap=1.0)


def compute_blurhash(image: Image.Image, components: tuple[int, int] = (4, 3)) -> str:
    """The blurhash of ``image`` (best on a thumbnail: the cost grows with the pixels)."""
    small = image.convert("RGB") if image.mode != "RGB" else image.copy()
    small.thumbnail((32, 32), Image.Resampling.BILINEAR)
    return blurhash.encode(small, components[0], components[1])


def process_image(
    data: bytes,
    *,
    max_long_side: int = 2048,
    thumbnail_long_side: int = 256,
    quality: int = 88,
    method: int = DEFAULT_WEBP_METHOD,
    max_pixels: int = 40_000_000,
    provenance: Provenance | None = None,
    allow_svg: bool = False,
    svg_preview_long_side: int = 1024,
) -> ProcessedImage:
    """Validate, clean and encode one image. Raises PermanentMediaError when refused.

    ``allow_svg``: an SVG source is sanitised and kept as the original, with a WebP preview;
    otherwise SVG is refused as unsupported. ``provenance`` is written into the original."""
    if allow_svg and looks_like_svg(data):
        return _process_svg(
            data,
            max_long_side=min(max_long_side, svg_preview_long_side),
            thumbnail_long_side=thumbnail_long_side,
            quality=quality,
            method=method,
            max_pixels=max_pixels,
            provenance=provenance,
        )
    xmp = provenance_xmp(provenance) if provenance is not None and not provenance.empty else b""
    still = webp.parse(data)
    if still is not None and not still.has_icc and max(still.width, still.height) <= max_long_side:
        kept = _keep_webp(data, still, thumbnail_long_side, quality, method, max_pixels, xmp)
        if kept is not None:
            return kept
    with _decoded(data, max_pixels) as source:
        source_format = str(source.format)
        try:
            oriented = ImageOps.exif_transpose(source)
        except (OSError, SyntaxError, ValueError) as exc:
            raise PermanentMediaError("not_an_image", "the image data is corrupt") from exc
        image = _normalise_mode(_to_srgb(oriented))
        # A fresh image carries pixels only: no EXIF, XMP, ICC profile or text chunks.
        clean = Image.new(image.mode, image.size)
        clean.paste(image)
    original = _capped(clean, max(1, max_long_side))
    thumbnail = _thumbnail(original, thumbnail_long_side)
    return ProcessedImage(
        original=_encode(original, quality, method, xmp),
        thumbnail=_encode(thumbnail, quality, method),
        source_format=source_format,
        blurhash=compute_blurhash(thumbnail),
    )


def _decoded(data: bytes, max_pixels: int) -> Image.Image:
    """Every pixel of an accepted image (first frame), or PermanentMediaError."""
    source = open_checked(data, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            source.seek(0)
            source.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        source.close()
        raise PermanentMediaError("image_too_large", "the image has too many pixels") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        source.close()
        raise PermanentMediaError("not_an_image", "the image data is corrupt") from exc
    return source


def _keep_webp(
    data: bytes,
    still: webp.StillWebP,
    thumbnail_long_side: int,
    quality: int,
    method: int,
    max_pixels: int,
    xmp: bytes,
) -> ProcessedImage | None:
    """The still WebP's own picture in a clean container, or None when its pixels must change
    (an EXIF rotation to apply) and the full path must run."""
    with _decoded(data, max_pixels) as source:
        if still.has_exif and source.getexif().get(_EXIF_ORIENTATION, 1) != 1:
            return None
        if source.size != (still.width, still.height):
            return None
        thumbnail = _thumbnail(_normalise_mode(source), thumbnail_long_side)
        encoded_thumbnail = _encode(thumbnail, quality, method)
        placeholder = compute_blurhash(thumbnail)
    return ProcessedImage(
        original=_rendition(webp.rewrap(still, xmp), still.width, still.height),
        thumbnail=encoded_thumbnail,
        source_format="WEBP",
        blurhash=placeholder,
    )


def _process_svg(
    data: bytes,
    *,
    max_long_side: int,
    thumbnail_long_side: int,
    quality: int,
    method: int,
    max_pixels: int,
    provenance: Provenance | None,
) -> ProcessedImage:
    from picture.media.svg import SVG, rasterise, sanitise_svg

    clean = sanitise_svg(data)
    png = rasterise(clean, max(1, max_long_side))
    raster = process_image(
        png,
        max_long_side=max_long_side,
        thumbnail_long_side=thumbnail_long_side,
        quality=quality,
        method=method,
        max_pixels=max_pixels,
        provenance=provenance,
    )
    original = Rendition(
        clean,
        raster.original.width,
        raster.original.height,
        hashlib.sha256(clean).hexdigest(),
        content_type=SVG,
    )
    return ProcessedImage(
        original=original,
        thumbnail=raster.thumbnail,
        source_format="SVG",
        blurhash=raster.blurhash,
        preview=raster.original,
    )
