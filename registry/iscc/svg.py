"""Image-Code of SVG files: rasterised with resvg exactly as iscc-sdk 0.9.7 does, then coded
like any other image.

iscc-sdk (`iscc_sdk.svg`) renders an SVG with resvg-py at its native size (width/height
attributes in px or absolute CSS units, else the viewBox) when both sides fit in 4096 px, and
at 4096 x 4096 otherwise; absolute CSS units in the root's width/height are first rewritten to
pixels in a temporary copy, because resvg only reads bare numbers and px. The rendered RGBA
picture then goes through the normal image normalization. The same resvg version renders the
same pixels, so resvg-py is pinned to the version iscc-sdk 0.9.7 installs with.

Name and description come from the SVG itself, in iscc-sdk's priority: the ISCC namespace in
the RDF metadata, then <title>/<desc>, then Dublin Core. iscc-sdk parses with lxml; the standard
library's expat parser gives the same elements for these lookups, and like iscc-sdk we refuse
documents that declare entities (entity expansion) and never resolve external ones.
"""

from __future__ import annotations

import io
import re
import tempfile
import warnings
from pathlib import Path
from xml.etree import ElementTree

import iscc_lib
import resvg_py
from PIL import Image

from registry.errors import UnsupportedMedia
from registry.iscc.image import ImageCode, image_normalize
from registry.iscc.meta import sanitize

__all__ = ["SVG_MAX_RENDER_SIZE", "gen_svg_code", "svg_native_size", "svg_rasterize"]

SVG_MAX_RENDER_SIZE = 4096
"""iscc-sdk's cap on a rendered side; SVGs without a usable size are rendered at this square."""

_SVG_NS = "http://www.w3.org/2000/svg"
_RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_DC_NS = "http://purl.org/dc/elements/1.1/"
_CC_NS = "http://creativecommons.org/ns#"
_ISCC_NS = "http://purl.org/iscc/schema/"

_DIMENSION_RE = re.compile(r"^\s*([\d.]+(?:[eE][+-]?\d+)?)\s*(px|cm|mm|in|pt|pc)?\s*$")
_CSS_UNIT_RE = re.compile(r"^\s*[\d.]+(?:[eE][+-]?\d+)?\s*(cm|mm|in|pt|pc)\s*$")
_XML_COMMENT_RE = re.compile(rb"<!--.*?-->", re.DOTALL)
_UNIT_TO_PX: dict[str | None, float] = {
    None: 1.0,
    "px": 1.0,
    "cm": 96.0 / 2.54,
    "mm": 96.0 / 25.4,
    "in": 96.0,
    "pt": 96.0 / 72.0,
    "pc": 96.0 / 6.0,
}


def _parse(path: Path, content: bytes) -> ElementTree.Element:
    if b"<!ENTITY" in _XML_COMMENT_RE.sub(b"", content):
        raise UnsupportedMedia(f"SVG declares entities, which are refused ({path.name})")
    try:
        return ElementTree.fromstring(content)
    except ElementTree.ParseError as exc:
        raise UnsupportedMedia(f"not well-formed SVG: {exc} ({path.name})") from None


def _dimension(value: str | None) -> int | None:
    """Pixels of a width/height attribute in px or an absolute CSS unit; None for relative units
    (%, em) and missing values (iscc-sdk `_parse_svg_dimension`)."""
    if value is None:
        return None
    match = _DIMENSION_RE.match(value)
    if match is None:
        return None
    return int(float(match.group(1)) * _UNIT_TO_PX[match.group(2)])


def svg_native_size(root: ElementTree.Element) -> tuple[int | None, int | None]:
    """Native pixel size from width/height, completed or replaced by the viewBox (iscc-sdk
    `_svg_native_size`, including its partial answers)."""
    width, height = _dimension(root.get("width")), _dimension(root.get("height"))
    if width and height:
        return width, height
    viewbox = root.get("viewBox")
    if viewbox:
        parts = viewbox.replace(",", " ").split()
        if len(parts) == 4:
            try:
                vb_w, vb_h = float(parts[2]), float(parts[3])
            except ValueError:
                return width, height
            if width and not height and vb_w > 0:
                return width, int(width * vb_h / vb_w)
            if height and not width and vb_h > 0:
                return int(height * vb_w / vb_h), height
            return int(vb_w), int(vb_h)
    return width, height


def _with_pixel_units(content: bytes, root: ElementTree.Element) -> bytes | None:
    """The document with absolute CSS units in the root's width/height rewritten to pixels by
    byte replacement inside the <svg> tag, as iscc-sdk does; None if nothing needs it."""
    values = {attr: root.get(attr, "") for attr in ("width", "height")}
    if not any(_CSS_UNIT_RE.match(v) for v in values.values()):
        return None
    cleaned = _XML_COMMENT_RE.sub(lambda m: b" " * len(m.group()), content)
    svg_open = re.search(rb"<svg\b[^>]*>", cleaned)
    if svg_open is None:
        return content
    tag = content[svg_open.start() : svg_open.end()]
    for attr, value in values.items():
        if not _CSS_UNIT_RE.match(value):
            continue
        px = _dimension(value)
        if px is not None:
            pattern = re.escape(attr.encode()) + rb"\s*=\s*([\"'])" + re.escape(value.encode())
            tag = re.sub(pattern + rb"\1", attr.encode() + b'="%d"' % px, tag, count=1)
    return content[: svg_open.start()] + tag + content[svg_open.end() :]


def svg_rasterize(
    path: Path, root: ElementTree.Element, content: bytes, max_size: int = SVG_MAX_RENDER_SIZE
) -> Image.Image:
    """The SVG rendered by resvg at iscc-sdk's size, as a decoded Pillow image."""
    native_w, native_h = svg_native_size(root)
    if native_w and native_h and native_w <= max_size and native_h <= max_size:
        size = (native_w, native_h)
    else:
        size = (max_size, max_size)
    converted = _with_pixel_units(content, root)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            render_path = path
            if converted is not None:
                # resvg reads a path; the copy keeps the file name, as iscc-sdk's does.
                render_path = Path(tmp) / path.name
                render_path.write_bytes(converted)
            png = resvg_py.svg_to_bytes(
                svg_path=str(render_path),
                width=size[0],
                height=size[1],
                resources_dir=str(path.parent),
            )
    except Exception as exc:  # resvg reports every rendering failure as a bare exception
        raise UnsupportedMedia(f"SVG cannot be rendered: {exc} ({path.name})") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(bytes(png)))
        img.load()
    return img


def _child_text(parent: ElementTree.Element, ns: str, name: str) -> str | None:
    element = parent.find(f"{{{ns}}}{name}")
    if element is not None and element.text:
        return element.text.strip()
    return None


def svg_metadata(root: ElementTree.Element) -> dict[str, str]:
    """Name, description and meta embedded in an SVG, first found wins: ISCC RDF properties,
    then <title>/<desc>, then Dublin Core (iscc-sdk `svg_meta_extract`)."""
    containers: list[ElementTree.Element] = []
    metadata = root.find(f"{{{_SVG_NS}}}metadata")
    if metadata is not None:
        for tag in (f"{{{_RDF_NS}}}Description", f"{{{_CC_NS}}}Work"):
            containers.extend(metadata.findall(f".//{tag}"))
    candidates: list[tuple[str, str | None]] = []
    for container in containers:
        candidates += [(f, _child_text(container, _ISCC_NS, f)) for f in ("name", "description")]
        candidates.append(("meta", _child_text(container, _ISCC_NS, "meta")))
    candidates.append(("name", _child_text(root, _SVG_NS, "title")))
    candidates.append(("description", _child_text(root, _SVG_NS, "desc")))
    for container in containers:
        candidates.append(("name", _child_text(container, _DC_NS, "title")))
        candidates.append(("description", _child_text(container, _DC_NS, "description")))
    found: dict[str, str] = {}
    for field, value in candidates:
        if field not in found and value:
            found[field] = sanitize(value)
    return found


def gen_svg_code(path: Path) -> tuple[ImageCode, dict[str, str], dict[str, int]]:
    """Image-Code of an SVG file, its embedded name/description/meta and the native width and
    height that iscc-sdk reports (only the ones it can tell)."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise UnsupportedMedia(f"cannot read SVG: {exc.strerror or exc} ({path.name})") from None
    root = _parse(path, content)
    img = svg_rasterize(path, root, content)
    try:
        pixels = image_normalize(img)
    finally:
        img.close()
    width, height = svg_native_size(root)
    size = {k: v for k, v in (("width", width), ("height", height)) if v}
    code = ImageCode(
        iscc=iscc_lib.gen_image_code_v0(pixels, 64)["iscc"],
        iscc_256=iscc_lib.gen_image_code_v0(pixels, 256)["iscc"],
        width=width or 0,
        height=height or 0,
    )
    return code, svg_metadata(root), size
