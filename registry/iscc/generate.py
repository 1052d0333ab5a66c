"""ISCC-CODE of a file: media detection, Meta-, Content-, Data- and Instance-Code, composed.

Follows iscc-sdk 0.9.7 `code_iscc` with default options: text, image, audio and video files
get Meta + Content + Data + Instance; every other file gets Data + Instance only (iscc-sdk's
`fallback` mode, which also adds no Meta-Code). Every unit is also given at 256 bits.

An empty file has no content to code, whatever its name says: it gets Data + Instance like
every other file without a Content-Code (iscc-sdk's `code_sum`; its `code_iscc` fails on an
empty text, image or media file instead). Its code is the same for every empty file, so it
identifies nothing but the empty byte string, and a declaration of it can only ever conflict
with other declarations of the empty file (same datahash).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import iscc_lib

if TYPE_CHECKING:
    from registry.iscc.ffmpeg import Progress

from registry.errors import InputError, UnsupportedMedia
from registry.iscc import text
from registry.iscc.codec import multiformat
from registry.iscc.data import gen_data_sum
from registry.iscc.granular import FeatureSet, features_json, text_features
from registry.iscc.mediatype import DOCX, EPUB, HEAD_SIZE, MediaKind, mediatype_guess
from registry.iscc.mediatype import mediatype_to_mode as _mode_of
from registry.iscc.meta import gen_meta_code, sanitize

__all__ = ["IsccResult", "detect", "generate", "text_of"]

_SCHEMA_TYPES = {
    "text": "TextDigitalDocument",
    "image": "ImageObject",
    "audio": "AudioObject",
    "video": "VideoObject",
}
_ZERO_HASH = bytes(32)

# Text formats iscc-sdk handles through Tika that we cannot extract faithfully yet.
_TEXT_UNSUPPORTED = {
    "application/rtf": "RTF",
    "application/msword": "Word 97-2003 (.doc)",
    "application/vnd.oasis.opendocument.text": "OpenDocument text",
    "application/x-ibooks+zip": "iBooks",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel (.xlsx)",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint",
    "application/vnd.ms-powerpoint": "PowerPoint 97-2003",
    "application/vnd.ms-excel": "Excel 97-2003",
}
SVG = "image/svg+xml"


@dataclass(frozen=True)
class IsccResult:
    """An ISCC-CODE with its units and the facts it was computed from."""

    iscc: str
    """Composite ISCC-CODE, "ISCC:..."."""
    units: list[str]
    """The ISCC-UNITs composed into `iscc`, in order (Meta, Content, Data, Instance)."""
    units_256: list[str]
    """The same units at 256 bits."""
    datahash: str
    """blake3 multihash hex of the file bytes ("1e20" + 64 hex digits)."""
    metahash: str | None
    """blake3 multihash hex of the Meta-Code's metadata as iscc-lib/iscc-sdk define it."""
    filesize: int
    mediatype: str
    mode: str
    """"text", "image", "audio", "video", or "data" (no Content-Code)."""
    filename: str
    name: str | None = None
    """Normalized title the Meta-Code was computed from."""
    description: str | None = None
    meta: str | None = None
    """Embedded ISCC metadata payload (data URL) the metahash was computed from, if any."""
    characteristics: dict[str, Any] = field(default_factory=dict)
    """Extra facts: `characters` for text; `width`/`height` for images and video; `duration`
    (seconds), `channels`, `sample_rate` for audio and video; `fps`, `frames` and the
    `soundtrack` Audio-Code (not part of the ISCC-CODE) for video."""
    features: tuple[FeatureSet, ...] = ()
    """Granular features (segments with offsets) for snippet matching; they travel in the
    declaration's metadata document (`declaration_document`), not in `to_dict`."""

    @property
    def datahash_bytes(self) -> bytes:
        """The raw 32-byte blake3 digest of the file."""
        return bytes.fromhex(self.datahash[4:])

    @property
    def metahash_bytes(self) -> bytes:
        """The raw 32-byte metahash digest, or 32 zero bytes without a Meta-Code."""
        return bytes.fromhex(self.metahash[4:]) if self.metahash else _ZERO_HASH

    @property
    def content_code(self) -> str | None:
        """The Content-Code unit, if the file has one."""
        for unit in self.units:
            if iscc_lib.iscc_decode(unit)[0] == iscc_lib.MT.CONTENT:
                return unit
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with iscc-sdk's keys (IsccMeta) where they exist."""
        out: dict[str, Any] = {}
        if self.mode in _SCHEMA_TYPES:
            out["@type"] = _SCHEMA_TYPES[self.mode]
        out["iscc"] = self.iscc
        if self.name is not None:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        if self.meta:
            out["meta"] = self.meta
        out["mode"] = self.mode
        out["filename"] = self.filename
        out["filesize"] = self.filesize
        out["mediatype"] = self.mediatype
        out.update(self.characteristics)
        if self.metahash:
            out["metahash"] = self.metahash
        out["datahash"] = self.datahash
        out["units"] = list(self.units)
        out["units_256"] = list(self.units_256)
        out["multiformat"] = {
            "iscc": multiformat(self.iscc),
            "units": [multiformat(unit) for unit in self.units],
            "units_256": [multiformat(unit) for unit in self.units_256],
        }
        return out

    def declaration_document(self) -> dict[str, Any] | None:
        """The metadata document a declaration of this file commits to with its metahash: the
        name and description the Meta-Code was computed from, and the granular features. None
        when the file has no features (images, data): its declaration keeps `metahash`."""
        features = features_json(self.features)
        if not features:
            return None
        document: dict[str, Any] = {"name": self.name}
        if self.description:
            document["description"] = self.description
        document["features"] = features
        return document


def _check_file(path: Path) -> os.stat_result:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot access {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"is a directory, not a file: {path}")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"not a regular file: {path}")
    return info


def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read(HEAD_SIZE)
    except PermissionError:
        raise InputError(f"permission denied: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def detect(path: str | os.PathLike[str]) -> MediaKind:
    """Media type and processing mode of a file (content sniffing, then file name)."""
    path = Path(path)
    empty = _check_file(path).st_size == 0
    mediatype = mediatype_guess(_read_head(path), path.name)
    return MediaKind(mediatype, "data" if empty else _mode_of(mediatype))


_Extractor = Callable[[Path], str]
_MetaReader = Callable[[Path], dict[str, str]]


def _text_handlers(mediatype: str) -> tuple[_Extractor, _MetaReader | None]:
    if mediatype == "application/pdf":
        from registry.iscc import document  # pypdfium2 and friends load only for documents

        return document.pdf_text, document.pdf_metadata
    if mediatype == DOCX:
        from registry.iscc import document

        return document.docx_text, document.docx_metadata
    if mediatype == EPUB:
        from registry.iscc import document

        return document.epub_text, document.epub_metadata
    if mediatype in ("text/html", "application/xhtml+xml"):
        return text.html_text, text.html_metadata
    if mediatype == "text/xml":
        return text.xml_text, None
    return text.plain_text, None


def text_of(path: str | os.PathLike[str], mediatype: str | None = None) -> str:
    """Plain text extracted from a text-mode file, before cleaning (as iscc-sdk extracts it)."""
    path = Path(path)
    mediatype = mediatype or detect(path).mediatype
    _refuse_unsupported(path, mediatype)
    extract, _ = _text_handlers(mediatype)
    return extract(path)


def _refuse_unsupported(path: Path, mediatype: str) -> None:
    if mediatype in _TEXT_UNSUPPORTED:
        kind = _TEXT_UNSUPPORTED[mediatype]
        raise UnsupportedMedia(f"{kind} documents are not supported yet ({path.name})")


def _text_content(
    path: Path, mediatype: str
) -> tuple[tuple[str, str], dict[str, Any], dict[str, str], FeatureSet]:
    extract, read_meta = _text_handlers(mediatype)
    raw = extract(path)
    # iscc-sdk refuses Tika output without text; its PDF path has no such check and codes the
    # empty text, which we reproduce (characters == 0 tells such files apart).
    if mediatype != "application/pdf" and not raw.strip():
        raise UnsupportedMedia(f"no text could be extracted ({path.name})")
    code = text.gen_text_code(raw)
    code_256 = text.gen_text_code(raw, bits=256)
    found = read_meta(path) if read_meta else {}
    # Tika metadata passes through iscc-sdk's text_sanitize; image metadata is sanitized already
    found = {key: sanitize(value) for key, value in found.items()}
    embedded = {k: v for k, v in found.items() if v}
    features = text_features(text.text_clean(raw))
    return (code.iscc, code_256.iscc), {"characters": code.characters}, embedded, features


def generate(path: str | os.PathLike[str], progress: Progress | None = None) -> IsccResult:
    """ISCC-CODE of a file, byte-identical to iscc-sdk 0.9.7 `code_iscc` with default options.

    `progress` is told the media time decoded so far for audio and video; an empty file gets
    Data + Instance only. Raises InputError for a missing, unreadable, non-regular or
    undecodable file and UnsupportedMedia for
    formats we cannot yet code the way iscc-sdk does.
    """
    path = Path(path)
    empty = _check_file(path).st_size == 0
    mediatype = mediatype_guess(_read_head(path), path.name)
    mode = "data" if empty else _mode_of(mediatype)
    if not empty:
        _refuse_unsupported(path, mediatype)

    content: tuple[str, str] | None = None
    characteristics: dict[str, Any] = {}
    embedded: dict[str, str] = {}
    features: tuple[FeatureSet, ...] = ()
    if mode == "text":
        content, characteristics, embedded, text_set = _text_content(path, mediatype)
        features = (text_set,)
    elif mode == "image" and mediatype == SVG:
        from registry.iscc.svg import gen_svg_code  # resvg only for SVG

        image_code, embedded, characteristics = gen_svg_code(path)
        content = (image_code.iscc, image_code.iscc_256)
    elif mode == "image":
        from registry.iscc.image import gen_image_code  # Pillow only for images

        image_code, embedded = gen_image_code(path)
        content = (image_code.iscc, image_code.iscc_256)
        characteristics = {"width": image_code.width, "height": image_code.height}
    elif mode in ("audio", "video"):
        from registry.iscc.timebased import gen_timed_content  # PyAV only for media

        timed = gen_timed_content(path, mode, progress)
        content = (timed.unit, timed.unit_256)
        characteristics, embedded, features = timed.facts, timed.embedded, timed.features

    meta = meta_256 = None
    if content is not None:
        fields = (embedded.get("name"), embedded.get("description"), embedded.get("meta"))
        meta = gen_meta_code(path, *fields)
        meta_256 = gen_meta_code(path, *fields, bits=256)

    data = gen_data_sum(path)
    units = [meta.iscc, content[0]] if meta and content else []
    units_256 = [meta_256.iscc, content[1]] if meta_256 and content else []
    units += data.units
    units_256 += data.units_256
    iscc = iscc_lib.gen_iscc_code_v0(units)["iscc"]
    return IsccResult(
        iscc=iscc,
        units=units,
        units_256=units_256,
        datahash=data.datahash,
        metahash=meta.metahash if meta else None,
        filesize=data.filesize,
        mediatype=mediatype,
        mode=mode if content is not None else "data",
        filename=path.name,
        name=meta.name if meta else None,
        description=meta.description if meta else None,
        meta=meta.meta if meta else None,
        characteristics=characteristics,
        features=features,
    )
