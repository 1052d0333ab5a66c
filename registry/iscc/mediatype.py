"""Media type detection: content sniffing plus file name, resolved the way iscc-sdk 0.9.7 does."""

from __future__ import annotations

import json
import mimetypes
import re
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "HEAD_SIZE",
    "MediaKind",
    "mediatype_from_data",
    "mediatype_from_name",
    "mediatype_guess",
    "mediatype_to_mode",
]

HEAD_SIZE = 4096
"""Bytes of the file start that iscc-sdk sniffs; we read the same amount."""

# A private registry so we never change the process-wide `mimetypes` tables. iscc-sdk uses the
# global one, which reads the machine's /etc/mime.types: the same file could then get another
# mode (and another ISCC) on a machine without it. So the entries Debian's media-types package
# adds to Python's built-in table are frozen into mediatypes.json and no system file is read.
# The additions after it are the ones iscc-sdk 0.9.7 registers.
_NAMES = mimetypes.MimeTypes(())
for _ext, _mime in json.loads(
    resources.files(__package__).joinpath("mediatypes.json").read_text()
).items():
    _NAMES.add_type(_mime, _ext)
for _mime, _ext in [
    ("text/markdown", ".md"),
    ("text/markdown", ".markdown"),
    ("application/x-mobipocket-ebook", ".mobi"),
    ("application/x-sqlite3", ".sqlite"),
    ("video/mp4", ".f4v"),
    ("video/h264", ".h264"),
    ("audio/x-wavpack", ".wv"),
    ("audio/mp4", ".m4a"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    ("image/heic", ".heic"),
    ("image/avif", ".avif"),
]:
    _NAMES.add_type(_mime, _ext)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EPUB = "application/epub+zip"

# Media types with an explicit processing mode in iscc-sdk 0.9.7 (SUPPORTED_MEDIATYPES).
SUPPORTED: dict[str, str] = {
    "application/rtf": "text",
    "application/msword": "text",
    "application/pdf": "text",
    EPUB: "text",
    "text/xml": "text",
    "application/json": "text",
    "application/xhtml+xml": "text",
    "application/vnd.oasis.opendocument.text": "text",
    "text/html": "text",
    "text/plain": "text",
    "application/x-ibooks+zip": "text",
    "text/markdown": "text",
    DOCX: "text",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "text",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "text",
    "application/vnd.ms-powerpoint": "text",
    "application/vnd.ms-excel": "text",
    "image/bmp": "image",
    "image/gif": "image",
    "image/jpeg": "image",
    "image/png": "image",
    "image/tiff": "image",
    "image/vnd.adobe.photoshop": "image",
    "application/postscript": "image",
    "image/avif": "image",
    "image/heic": "image",
    "image/svg+xml": "image",
    "audio/mpeg": "audio",
    "audio/wav": "audio",
    "audio/x-wav": "audio",
    "audio/ogg": "audio",
    "audio/aiff": "audio",
    "audio/x-aiff": "audio",
    "audio/x-flac": "audio",
    "audio/opus": "audio",
    "audio/x-wavpack": "audio",
    "audio/mp4": "audio",
    "application/vnd.rn-realmedia": "video",
    "video/x-dirac": "video",
    "video/3gpp": "video",
    "video/3gpp2": "video",
    "video/x-ms-asf": "video",
    "video/avi": "video",
    "video/webm": "video",
    "video/mpeg": "video",
    "video/mp4": "video",
    "video/x-m4v": "video",
    "video/x-matroska": "video",
    "video/ogg": "video",
    "video/quicktime": "video",
    "video/x-flv": "video",
    "application/x-shockwave-flash": "video",
    "video/h264": "video",
    "video/x-ms-wmv": "video",
}

_NORMALIZE = {
    "audio/x-aiff": "audio/aiff",
    "audio/x-wav": "audio/wav",
    "audio/x-m4a": "audio/mp4",
    "image/x-ms-bmp": "image/bmp",
    "video/x-msvideo": "video/avi",
    "application/ogg": "video/ogg",
    "application/xml": "text/xml",
    "application/vnd.ms-asf": "video/x-ms-asf",
    "application/vnd.adobe.flash.movie": "application/x-shockwave-flash",
}

_GENERIC_SNIFF_TYPES = frozenset({"text/xml", "application/xml"})
_FIRST_ELEM_RE = re.compile(rb"<([a-zA-Z][\w.-]*)")
_XML_COMMENT_RE = re.compile(rb"<!--.*?-->", re.DOTALL)
_SVG_XMLNS = (b'xmlns="http://www.w3.org/2000/svg"', b"xmlns='http://www.w3.org/2000/svg'")
_BMP_DIB_SIZES = {12, 40, 52, 56, 64, 108, 124}
_ARCHIVES = [
    (b"\x1f\x8b", "application/x-gzip"),
    (b"BZh", "application/x-bzip2"),
    (b"\xfd7zXZ\x00", "application/x-xz"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/x-rar"),
    (b"SQLite format 3\x00", "application/x-sqlite3"),
]


@dataclass(frozen=True)
class MediaKind:
    """What a file is: its media type and the processing mode that turns it into a code."""

    mediatype: str
    mode: str
    """"text", "image", "audio", "video", or "data" for files without a content code."""


def mediatype_from_name(name: str) -> str | None:
    """Media type from the file extension (None for compressed variants such as .svgz)."""
    mime, encoding = _NAMES.guess_type(name, strict=True)
    return None if encoding is not None else mime


def mediatype_from_data(head: bytes) -> str | None:
    """Media type from magic bytes of the file start, for the formats that have reliable ones.

    iscc-sdk sniffs with libmagic rules (python-magic-pure); this covers the image, document,
    audio and video signatures that decide a processing mode. Plain text has no signature and
    is recognised by name, as in iscc-sdk where sniffing gives up on it too.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    # "BM" alone is too weak: also require a known DIB header size.
    if head.startswith(b"BM") and int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES:
        return "image/bmp"
    if head.startswith(b"8BPS"):
        return "image/vnd.adobe.photoshop"
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/avi"}.get(head[8:12])
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(head)
    if head[4:8] == b"ftyp":
        return _ftyp_kind(head[8:12])
    if head.startswith(b"ID3"):
        # Bare MPEG frame sync is too weak a signature (random data matches it): name decides.
        return "audio/mpeg"
    if head.startswith(b"fLaC"):  # libmagic 5.44 (what iscc-sdk sniffs with here) says audio/flac
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "application/ogg"
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio/x-aiff"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"FLV\x01"):
        return "video/x-flv"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "video/mpeg"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "video/x-ms-asf"
    for signature, mime in _ARCHIVES:
        if head.startswith(signature):
            return mime
    start = head.lstrip()[:64].lower()
    if start.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    if start.startswith(b"<?xml"):
        return "application/xml"
    return None


def _zip_kind(head: bytes) -> str:
    # An EPUB stores the uncompressed entry "mimetype" first (OCF); OOXML names its parts.
    if head[30:38] == b"mimetype":
        declared = head[38 : 38 + 64]
        if declared.startswith(b"application/epub+zip"):
            return EPUB
    if b"[Content_Types].xml" in head or b"_rels/.rels" in head:
        if b"word/" in head:
            return DOCX
        if b"xl/" in head:
            return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if b"ppt/" in head:
            return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    return "application/zip"


def _ftyp_kind(brand: bytes) -> str:
    if brand in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"):
        return "image/heic"
    if brand in (b"avif", b"avis"):
        return "image/avif"
    if brand in (b"M4A ", b"M4B ", b"M4P "):
        return "audio/mp4"
    if brand == b"qt  ":
        return "video/quicktime"
    if brand.startswith(b"3g2"):
        return "video/3gpp2"
    if brand.startswith(b"3gp"):
        return "video/3gpp"
    if brand == b"M4V ":
        return "video/x-m4v"
    return "video/mp4"


def _normalize(mime: str | None) -> str | None:
    return _NORMALIZE.get(mime, mime) if mime else None


def _supported(mime: str | None) -> bool:
    return _normalize(mime) in SUPPORTED


def _has_svg_root(head: bytes) -> bool:
    cleaned = _XML_COMMENT_RE.sub(b"", head)
    match = _FIRST_ELEM_RE.search(cleaned)
    return match is not None and match.group(1) == b"svg" and any(x in cleaned for x in _SVG_XMLNS)


def mediatype_guess(head: bytes, file_name: str | None = None) -> str:
    """Media type of a file from its first bytes and name, resolved like iscc-sdk 0.9.7.

    When sniffing and the name disagree, the name wins if only it maps to a supported type
    (or sniffing only found generic XML); sniffing wins if only it is supported; otherwise
    the name wins.
    """
    by_name = _normalize(mediatype_from_name(file_name)) if file_name else None
    by_data = _normalize(mediatype_from_data(head))
    if by_name and by_data and by_name != by_data:
        if _supported(by_name) and (not _supported(by_data) or by_data in _GENERIC_SNIFF_TYPES):
            mime = by_name
        elif _supported(by_data) and not _supported(by_name):
            mime = by_data
        else:
            mime = by_name
        if "ogg" in by_name and "ogg" in by_data:
            mime = by_name
    else:
        mime = by_name or by_data
    if mime in _GENERIC_SNIFF_TYPES and head and _has_svg_root(head):
        mime = "image/svg+xml"
    return mime or "application/octet-stream"


def mediatype_to_mode(mediatype: str) -> str:
    """Processing mode of a media type: as iscc-sdk, else by top-level type, else "data"."""
    mime = mediatype.split(";")[0].strip()
    if mime in SUPPORTED:
        return SUPPORTED[mime]
    top = mime.split("/")[0]
    if top in ("text", "image", "audio", "video"):
        return top
    return "data"
