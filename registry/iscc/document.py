"""Text and metadata of document formats: PDF (pypdfium2), DOCX and EPUB (zipfile + XML).

What iscc-sdk 0.9.7 does and how close we come (verified against it, see tests/iscc):

- PDF: the same pypdfium2 call as iscc-sdk (`get_text_bounded` per page, joined by "\\n"), so
  the text is identical. Title and subject come from the document information dictionary
  (`/iscc_name`, `/iscc_description`, `/iscc_meta`, then `/Title`, `/Subject`), which Tika also
  reads; Tika falls back to XMP dc:title when /Title is missing, we do not.
- DOCX: body text in document order as Tika's OOXML extractor emits it: runs, tabs and breaks,
  footnote/endnote text at the place of its reference, field results but not field codes,
  no deleted text; headers and footers are left out (Tika 0.6.0 leaves them out too).
  Title/description from docProps/core.xml, `iscc_*` from docProps/custom.xml.
- EPUB: Tika's EpubParser order: the spine documents first, then every other manifest item
  except style sheets, SVG, XML and the NCX, each announced by its path in the archive (an
  item that is not XHTML contributes only that path line). Title/description from the OPF.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote
from xml.parsers import expat

import pypdfium2 as pdfium

from registry.errors import UnsupportedMedia
from registry.iscc.text import TEXT_EXTRACT_MAX_LENGTH, decode_text, html_markup_text

__all__ = [
    "docx_metadata",
    "docx_text",
    "epub_metadata",
    "epub_text",
    "pdf_metadata",
    "pdf_text",
]

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_DC = "http://purl.org/dc/elements/1.1/"
_OPF = "http://www.idpf.org/2007/opf"
_XHTML = "http://www.w3.org/1999/xhtml"
_MEMBER_LIMIT = 256 << 20
"""Largest decompressed archive member we parse (guards against zip bombs)."""
_INFLATE_CHUNK = 1 << 20
"""Bytes inflated at a time while an archive member is read."""
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
"""Compression methods of the members we read: the ones Word and EPUB writers use, and the
ones zipfile inflates with a bound on the output of each call (it inflates bzip2 and LZMA
members a whole compressed chunk at a time, however large that makes them)."""


# --- PDF ------------------------------------------------------------------------------------


def _open_pdf(path: Path) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise UnsupportedMedia(f"not a readable PDF: {exc} ({path.name})") from None


def pdf_text(path: Path) -> str:
    """Text of all pages, as iscc-sdk's `pdf_text_extract` (no length cap there either)."""
    doc = _open_pdf(path)
    try:
        return "\n".join(page.get_textpage().get_text_bounded() for page in doc)
    finally:
        doc.close()


def _pdf_info(doc: pdfium.PdfDocument, key: str) -> str:
    import ctypes

    import pypdfium2.raw as raw

    size = raw.FPDF_GetMetaText(doc, key.encode("ascii"), None, 0)
    if size <= 2:
        return ""
    buffer = ctypes.create_string_buffer(size)
    raw.FPDF_GetMetaText(doc, key.encode("ascii"), buffer, size)
    return buffer.raw[: size - 2].decode("utf-16-le", errors="replace")


def pdf_metadata(path: Path) -> dict[str, str]:
    """Name, description and meta from the PDF document information dictionary."""
    doc = _open_pdf(path)
    try:
        candidates = {
            "name": ("iscc_name", "Title"),
            "description": ("iscc_description", "Subject"),
            "meta": ("iscc_meta",),
        }
        found: dict[str, str] = {}
        for field, keys in candidates.items():
            for key in keys:
                if value := _pdf_info(doc, key).strip():
                    found[field] = value
                    break
        return found
    finally:
        doc.close()


# --- archives -------------------------------------------------------------------------------


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsupportedMedia(f"not a readable ZIP container: {exc} ({path.name})") from None


def _member(archive: zipfile.ZipFile, name: str) -> bytes | None:
    """The bytes of archive member `name` (None if there is none), inflated a chunk at a time
    and never past its declared size, which is at most _MEMBER_LIMIT.

    `ZipFile.read` inflates a member whole before it checks the size and CRC the archive
    declares for it: a member that says it holds a few bytes and inflates to gigabytes takes
    that much memory first.
    """
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    where = f"({archive.filename})"
    if info.file_size > _MEMBER_LIMIT:
        raise UnsupportedMedia(
            f"archive member {name} is too large ({info.file_size} bytes, at most "
            f"{_MEMBER_LIMIT} are read) {where}"
        )
    if info.compress_type not in _METHODS:
        raise UnsupportedMedia(
            f"archive member {name} uses compression method {info.compress_type}; only "
            f"{' and '.join(_METHODS.values())} are read {where}"
        )
    chunks: list[bytes] = []
    try:
        with archive.open(info) as stream:
            # Each read inflates at most _INFLATE_CHUNK bytes, and zipfile stops at the size
            # the member declares (checked against _MEMBER_LIMIT above).
            while chunk := stream.read(_INFLATE_CHUNK):
                chunks.append(chunk)
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):
            # zipfile stops inflating at the declared size; a CRC that fails there is either
            # damage or a member that holds more than it says.
            raise UnsupportedMedia(
                f"archive member {name} does not match the size ({info.file_size} bytes) and "
                f"checksum it declares: damaged, or it inflates to more {where}"
            ) from None
        raise UnsupportedMedia(f"cannot read {name}: {exc} {where}") from None
    # zipfile raises NotImplementedError for a compression method it lacks and RuntimeError
    # for an encrypted member: both are files we cannot read, not bugs.
    except (OSError, RuntimeError, NotImplementedError, EOFError) as exc:
        raise UnsupportedMedia(f"cannot read {name}: {exc} {where}") from None
    return b"".join(chunks)


def _parse(
    data: bytes,
    start: Callable[[str, dict[str, str]], None] | None = None,
    end: Callable[[str], None] | None = None,
    chars: Callable[[str], None] | None = None,
    source: str = "",
) -> None:
    """Stream one XML document through expat with namespaced names ("uri name")."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    if start:
        parser.StartElementHandler = start
    if end:
        parser.EndElementHandler = end
    if chars:
        parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise UnsupportedMedia(f"malformed XML in {source}: {exc}") from None


def _simple_fields(data: bytes, wanted: dict[str, str], source: str) -> dict[str, str]:
    """Text of the first occurrence of each wanted element ("uri name" -> field)."""
    found: dict[str, str] = {}
    current: list[str] = []
    parts: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        current.append(tag)
        parts.clear()

    def end(tag: str) -> None:
        field = wanted.get(tag)
        text = "".join(parts).strip()
        if field and text and field not in found:
            found[field] = text
        current.pop()
        parts.clear()

    _parse(data, start, end, parts.append, source)
    return found


# --- DOCX -----------------------------------------------------------------------------------


class _DocxText:
    """Collects document text as Tika's OOXML extractor emits it (see module docstring)."""

    def __init__(self, notes: dict[str, dict[str, str]] | None = None) -> None:
        self.parts: list[str] = []
        self.notes = notes or {}
        self.skip = 0  # depth inside deleted or moved-away content
        self.in_text = False
        self.field_code = False  # between fldChar begin and separate

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        ns, _, name = tag.rpartition(" ")
        if ns != _W:
            return
        if name in ("del", "moveFrom"):
            self.skip += 1
        elif name == "t":
            self.in_text = True
        elif name == "tab":
            self.parts.append("\t")
        elif name in ("br", "cr"):
            self.parts.append("\n")
        elif name == "fldChar":
            kind = attrs.get(f"{_W} fldCharType")
            if kind == "begin":
                self.field_code = True
            elif kind in ("separate", "end"):
                self.field_code = False
        elif name in ("footnoteReference", "endnoteReference") and not self.skip:
            kind = "footnote" if name.startswith("foot") else "endnote"
            note = self.notes.get(kind, {}).get(attrs.get(f"{_W} id", ""))
            if note:
                self.parts.append(note + "\n")

    def end(self, tag: str) -> None:
        ns, _, name = tag.rpartition(" ")
        if ns != _W:
            return
        if name in ("del", "moveFrom"):
            self.skip -= 1
        elif name == "t":
            self.in_text = False
        elif name in ("p", "tc"):
            self.parts.append("\n" if name == "p" else "\t")

    def chars(self, data: str) -> None:
        if self.in_text and not self.skip and not self.field_code:
            self.parts.append(data)

    def text(self) -> str:
        return "".join(self.parts)


def _docx_notes(archive: zipfile.ZipFile, part: str, kind: str) -> dict[str, str]:
    data = _member(archive, f"word/{part}")
    if data is None:
        return {}
    notes: dict[str, str] = {}
    collector = _DocxText()
    current: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag == f"{_W} {kind}":
            current.append(attrs.get(f"{_W} id", ""))
            collector.parts.clear()
        collector.start(tag, attrs)

    def end(tag: str) -> None:
        collector.end(tag)
        if tag == f"{_W} {kind}" and current:
            notes[current.pop()] = collector.text().strip()

    _parse(data, start, end, collector.chars, f"word/{part}")
    return notes


def docx_text(path: Path) -> str:
    """Body text of a Word document."""
    with _open_zip(path) as archive:
        data = _member(archive, "word/document.xml")
        if data is None:
            raise UnsupportedMedia(f"not a Word document: word/document.xml missing ({path.name})")
        notes = {
            "footnote": _docx_notes(archive, "footnotes.xml", "footnote"),
            "endnote": _docx_notes(archive, "endnotes.xml", "endnote"),
        }
        collector = _DocxText(notes)
        _parse(data, collector.start, collector.end, collector.chars, "word/document.xml")
        return collector.text()[:TEXT_EXTRACT_MAX_LENGTH]


def docx_metadata(path: Path) -> dict[str, str]:
    """Title and description (core properties) and `iscc_*` custom properties."""
    found: dict[str, str] = {}
    with _open_zip(path) as archive:
        custom = _member(archive, "docProps/custom.xml")
        if custom is not None:
            found.update(_docx_custom(custom))
        core = _member(archive, "docProps/core.xml")
        if core is not None:
            wanted = {f"{_DC} title": "name", f"{_DC} description": "description"}
            for field, value in _simple_fields(core, wanted, "docProps/core.xml").items():
                found.setdefault(field, value)
    return found


def _docx_custom(data: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    names: list[str] = []
    parts: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag.endswith(" property"):
            names.append(attrs.get("name", ""))
            parts.clear()

    def end(tag: str) -> None:
        if tag.endswith(" property") and names:
            name = names.pop()
            field = name.removeprefix("iscc_") if name.startswith("iscc_") else None
            if field in ("name", "description", "meta") and (value := "".join(parts).strip()):
                found.setdefault(field, value)

    _parse(data, start, end, parts.append, "docProps/custom.xml")
    return found


# --- EPUB -----------------------------------------------------------------------------------


def _epub_package(archive: zipfile.ZipFile, path: Path) -> tuple[str, bytes]:
    container = _member(archive, "META-INF/container.xml")
    if container is None:
        raise UnsupportedMedia(f"not an EPUB: META-INF/container.xml missing ({path.name})")
    rootfiles: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag.endswith(" rootfile") and attrs.get("full-path"):
            rootfiles.append(attrs["full-path"])

    _parse(container, start, source="META-INF/container.xml")
    opf = _member(archive, rootfiles[0]) if rootfiles else None
    if opf is None:
        raise UnsupportedMedia(f"not an EPUB: package document missing ({path.name})")
    return rootfiles[0], opf


def _embedded_item(media_type: str) -> bool:
    # Tika's EpubParser skips these manifest items when they are not in the spine.
    media = media_type.lower()
    return not (
        "css" in media
        or "svg" in media
        or media.endswith("/xml")
        or "x-ibooks" in media
        or media == "application/x-dtbncx+xml"
    )


def _xhtml_like(media_type: str) -> bool:
    return media_type.lower() in (
        "application/xhtml+xml",
        "application/xml",
        "text/xml",
        "text/html",
        "application/x-dtbook+xml",
    )


def _xhtml_body_text(data: bytes, source: str) -> str:
    """Body text of an XHTML content document (no head, script or style)."""
    parts: list[str] = []
    stack: list[str] = []
    in_body = [False]
    skip = {"head", "script", "style", "title"}

    def start(tag: str, attrs: dict[str, str]) -> None:
        name = tag.rpartition(" ")[2].lower()
        stack.append(name)
        if name == "body":
            in_body[0] = True

    def end(tag: str) -> None:
        name = stack.pop() if stack else ""
        if name in ("p", "div", "li", "br", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td"):
            parts.append("\n")

    def chars(data: str) -> None:
        if in_body[0] and not skip.intersection(stack):
            parts.append(data)

    try:
        _parse(data, start, end, chars, source)
    except UnsupportedMedia:
        # Not well-formed (e.g. HTML entities without a DTD): read it leniently, as Tika does.
        return html_markup_text(decode_text(data, source))
    return "".join(parts)


def _java_string_hash(text: str) -> int:
    value = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split():
        value = (31 * value + int(unit, 16)) & 0xFFFFFFFF
    return value


def _java_hashmap_order(keys: list[str]) -> list[str]:
    """Iteration order of a java.util.HashMap filled with `keys` in this order.

    Tika keeps the manifest in a HashMap and walks it for the items outside the spine, so
    their order in the extracted text (and with it the Text-Code) follows Java's hashing.
    """
    capacity = 16
    while len(keys) > capacity * 3 // 4:
        capacity *= 2

    def bucket(key: str) -> int:
        h = _java_string_hash(key)
        return (h ^ (h >> 16)) & (capacity - 1)

    return sorted(keys, key=bucket)  # stable: insertion order within a bucket


def _epub_items(archive: zipfile.ZipFile, path: Path) -> Iterator[str]:
    opf_path, opf = _epub_package(archive, path)
    base = posixpath.dirname(opf_path)
    manifest: dict[str, tuple[str, str]] = {}
    spine: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag == f"{_OPF} item" and attrs.get("id") and attrs.get("href"):
            manifest.setdefault(attrs["id"], (attrs["href"], attrs.get("media-type", "")))
        elif tag == f"{_OPF} itemref" and attrs.get("idref"):
            spine.append(attrs["idref"])

    _parse(opf, start, source=opf_path)

    def member_name(href: str) -> str:
        return posixpath.normpath(posixpath.join(base, unquote(href)))

    done: set[str] = set()
    for item_id in spine:
        if item_id not in manifest:
            continue
        href, media_type = manifest[item_id]
        name = member_name(href)
        if _xhtml_like(media_type):
            data = _member(archive, name)
            if data is not None:
                done.add(item_id)
                yield _xhtml_body_text(data, name)
        elif _embedded_item(media_type):
            done.add(item_id)
            yield f"{name}\n"
    for item_id in _java_hashmap_order(list(manifest)):
        href, media_type = manifest[item_id]
        if item_id in done or not _embedded_item(media_type):
            continue
        name = member_name(href)
        text = ""
        if media_type.lower() == "application/xhtml+xml":
            data = _member(archive, name)
            text = _xhtml_body_text(data, name) if data is not None else ""
        yield f"{name}\n{text}\n"


def epub_text(path: Path) -> str:
    """Text of an EPUB in reading order, as Tika's EpubParser orders it."""
    parts: list[str] = []
    size = 0
    with _open_zip(path) as archive:
        for text in _epub_items(archive, path):
            parts.append(text)
            size += len(text)
            if size >= TEXT_EXTRACT_MAX_LENGTH:
                break
    return "".join(parts)[:TEXT_EXTRACT_MAX_LENGTH]


def epub_metadata(path: Path) -> dict[str, str]:
    """Title and description from the OPF package metadata (first dc:title wins, as in Tika)."""
    with _open_zip(path) as archive:
        opf_path, opf = _epub_package(archive, path)
        wanted = {f"{_DC} title": "name", f"{_DC} description": "description"}
        return _simple_fields(opf, wanted, opf_path)
