"""Image-Code: Pillow decoding and normalization exactly as iscc-sdk 0.9.7, then iscc-lib's hash.

Normalization (iscc-sdk `image_normalize` with default options): EXIF transpose, transparency
onto white (any other mode to RGB), tolerant border trim (tolerance 16, at most 16 passes, a
one-sided cut only if the band is flat within tolerance 8), grayscale "L", 32x32 BICUBIC.

Embedded title and description: iscc-sdk reads them with exiv2; we read the same fields with
Pillow (XMP packet, IPTC, EXIF XPTitle) in exiv2's priority order. Differences: XMP inside
formats Pillow does not expose (e.g. some TIFF/WebP variants) is not seen, and a language
alternative (dc:title) yields its x-default entry where exiv2 prints all entries.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import iscc_lib
from PIL import Image, ImageOps, IptcImagePlugin, PngImagePlugin
from pillow_heif import register_heif_opener

from registry.errors import UnsupportedMedia
from registry.iscc.meta import sanitize

# HEIC/HEIF through libheif, as iscc-sdk 0.9.7 does; AVIF is native in Pillow >= 11.3 (iscc-sdk
# uses pillow-avif-plugin over the same libavif).
register_heif_opener()

__all__ = [
    "IMAGE_MAX_PIXELS",
    "TRIM_MAX_PASSES",
    "ImageCode",
    "gen_image_code",
    "image_metadata",
    "image_normalize",
    "image_trim_tolerant",
]

IMAGE_MAX_PIXELS = 128_000_000
"""iscc-sdk's `image_max_pixels`. Pillow warns above it and refuses above twice as many."""

TRIM_MAX_PASSES = 16
"""Upper bound for repeated tolerant trim passes (guards against crafted nested borders)."""

# Process-wide Pillow settings, set exactly as importing iscc-sdk sets them, so the same files
# decode (or are refused as decompression bombs) in both.
Image.MAX_IMAGE_PIXELS = IMAGE_MAX_PIXELS
PngImagePlugin.MAX_TEXT_CHUNK = 4 * 1024 * 1024

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_XMP_FIELDS: list[tuple[str, str, str]] = [
    ("http://purl.org/iscc/schema/", "name", "name"),
    ("http://purl.org/iscc/schema/", "description", "description"),
    ("http://purl.org/iscc/schema/", "meta", "meta"),
    ("http://purl.org/dc/elements/1.1/", "title", "name"),
    ("http://ns.adobe.com/xap/1.0/", "Nickname", "name"),
    ("http://ns.adobe.com/xmp/1.0/DynamicMedia/", "shotName", "name"),
    ("http://ns.adobe.com/photoshop/1.0/", "Headline", "name"),
    ("http://iptc.org/std/Iptc4xmpExt/2008-02-29/", "AOTitle", "name"),
]
_DC_DESCRIPTION = ("http://purl.org/dc/elements/1.1/", "description", "description")
_IPTC_NAMES = [(2, 105), (2, 85), (2, 5)]  # Headline, BylineTitle, ObjectName
_EXIF_XPTITLE = 0x9C9B


@dataclass(frozen=True)
class ImageCode:
    """Image-Code units (64 and 256 bits) with the stored (not transposed) pixel size."""

    iscc: str
    iscc_256: str
    width: int
    height: int


def _open(path: Path) -> Image.Image:
    """Open and fully decode, turning every decoding failure into one clear error."""
    try:
        with warnings.catch_warnings():
            # Between 1x and 2x the limit Pillow only warns and iscc-sdk goes on: so do we.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()
        return img
    except Image.DecompressionBombError as exc:
        raise UnsupportedMedia(
            f"image too large to decode safely (decompression bomb guard): {exc} ({path.name})"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise UnsupportedMedia(f"not a decodable image: {exc} ({path.name})") from None


def image_exif_transpose(img: Image.Image) -> Image.Image:
    return ImageOps.exif_transpose(img)


def image_fill_transparency(img: Image.Image) -> Image.Image:
    """RGB image with any alpha (channel or palette transparency) composed onto white."""
    white = (255, 255, 255)
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGB", img.size, white)
        background.paste(img, mask=img.getchannel("A"))
        return background
    if img.mode == "P":
        if "transparency" in img.info:
            rgba = img.convert("RGBA")
            background = Image.new("RGB", img.size, white)
            background.paste(rgba, mask=rgba.getchannel("A"))
            return background
        return img.convert("RGB")
    return img.convert("RGB")


def image_border_bbox(img: Image.Image, tolerance: int) -> tuple[int, int, int, int] | None:
    """Bounding box of pixels differing from the top-left pixel by more than `tolerance`."""
    ref = img.getpixel((0, 0))
    ref = ref if isinstance(ref, tuple) else (ref,)
    lut = [255 if abs(v - c) > tolerance else 0 for c in ref for v in range(256)]
    return img.point(lut).getbbox()


def image_trim_tolerant(img: Image.Image, tolerance: int = 16) -> Image.Image:
    """Trim near-uniform borders repeatedly until stable (iscc-sdk 0.9.7 `image_trim_tolerant`).

    A pass that would cut only one side must remove a flat band (within half the tolerance),
    so smooth gradients such as skies are kept.
    """
    mask_img = img if img.mode in ("RGB", "L") else img.convert("RGB")
    for _ in range(TRIM_MAX_PASSES):
        bbox = image_border_bbox(mask_img, tolerance)
        if bbox is None or bbox == (0, 0, *mask_img.size):
            break
        w, h = mask_img.size
        sides = (bbox[0] > 0) + (bbox[1] > 0) + (bbox[2] < w) + (bbox[3] < h)
        if sides == 1 and image_border_bbox(mask_img, tolerance // 2) != bbox:
            break
        img, mask_img = img.crop(bbox), mask_img.crop(bbox)
    return img


def image_normalize(img: Image.Image) -> bytes:
    """The 1024 grayscale pixel values (32x32) that the Image-Code is computed from."""
    img = image_exif_transpose(img)
    img = image_fill_transparency(img)
    img = image_trim_tolerant(img)
    img = img.convert("L")
    return img.resize((32, 32), Image.Resampling.BICUBIC).tobytes()


def gen_image_code(path: Path) -> tuple[ImageCode, dict[str, str]]:
    """Image-Code of an image file and its embedded name/description/meta (one decode)."""
    img = _open(path)
    try:
        width, height = img.size
        metadata = image_metadata(img)
        try:
            pixels = image_normalize(img)
        except (OSError, ValueError) as exc:
            raise UnsupportedMedia(f"not a decodable image: {exc} ({path.name})") from None
    finally:
        img.close()
    code = ImageCode(
        iscc=iscc_lib.gen_image_code_v0(pixels, 64)["iscc"],
        iscc_256=iscc_lib.gen_image_code_v0(pixels, 256)["iscc"],
        width=width,
        height=height,
    )
    return code, metadata


# --- embedded metadata ----------------------------------------------------------------------


def _xmp_packet(img: Image.Image) -> bytes | None:
    packet: Any = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    if packet is None and hasattr(img, "tag_v2"):
        packet = img.tag_v2.get(700)  # TIFF XMLPacket
    if isinstance(packet, str):
        return packet.encode("utf-8")
    if isinstance(packet, tuple):
        packet = bytes(packet)
    return packet if isinstance(packet, bytes) else None


def _xmp_value(elem: ElementTree.Element) -> str:
    container = next(iter(elem), None)
    if container is None or not container.tag.startswith(f"{{{_RDF}}}"):
        return (elem.text or "").strip()
    items = container.findall(f"{{{_RDF}}}li")
    if container.tag == f"{{{_RDF}}}Alt":
        for item in items:
            if item.get(_XML_LANG) == "x-default":
                return (item.text or "").strip()
    return ", ".join((item.text or "").strip() for item in items)


def _xmp_properties(packet: bytes) -> dict[tuple[str, str], str]:
    """Top-level XMP properties as {(namespace, name): value}."""
    try:
        root = ElementTree.fromstring(packet.strip(b"\x00 \r\n\t"))
    except ElementTree.ParseError:
        return {}
    found: dict[tuple[str, str], str] = {}
    for desc in root.iter(f"{{{_RDF}}}Description"):
        for key, value in desc.attrib.items():
            if key.startswith("{") and not key.startswith(f"{{{_RDF}}}"):
                ns, name = key[1:].split("}", 1)
                found.setdefault((ns, name), value.strip())
        for child in desc:
            if child.tag.startswith("{"):
                ns, name = child.tag[1:].split("}", 1)
                found.setdefault((ns, name), _xmp_value(child))
    return found


def _decode_legacy(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # exiv2's fallback for legacy IPTC text


def _iptc_values(img: Image.Image) -> dict[tuple[int, int], str]:
    try:
        info = IptcImagePlugin.getiptcinfo(img) or {}
    except Exception:  # a damaged IPTC block must not cost the image its code
        return {}
    values: dict[tuple[int, int], str] = {}
    for key in _IPTC_NAMES:
        raw = info.get(key)
        if isinstance(raw, list):
            raw = raw[0] if raw else None
        if isinstance(raw, bytes):
            values[key] = _decode_legacy(raw).strip()
    return values


def _exif_title(img: Image.Image) -> str:
    try:
        raw = img.getexif().get(_EXIF_XPTITLE)
    except Exception:  # damaged EXIF: as exiv2, skip the field
        return ""
    if isinstance(raw, tuple):
        raw = bytes(raw)
    if isinstance(raw, bytes):
        return raw.decode("utf-16-le", errors="replace").rstrip("\x00").strip()
    return raw.strip() if isinstance(raw, str) else ""


def image_metadata(img: Image.Image) -> dict[str, str]:
    """Embedded name, description and meta in iscc-sdk's priority order (first found wins)."""
    packet = _xmp_packet(img)
    xmp = _xmp_properties(packet) if packet else {}
    candidates: list[tuple[str, str]] = []
    for ns, name, field in [*_XMP_FIELDS, _DC_DESCRIPTION]:
        if value := xmp.get((ns, name)):
            candidates.append((field, value))
    iptc = _iptc_values(img)
    candidates += [("name", iptc[key]) for key in _IPTC_NAMES if iptc.get(key)]
    if title := _exif_title(img):
        candidates.append(("name", title))
    found: dict[str, str] = {}
    for field, value in candidates:
        if field not in found:
            found[field] = sanitize(value)
    return found
