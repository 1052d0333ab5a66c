"""Builders of small test media (PDF, DOCX, EPUB, images, audio, video) from code, so no fixture
is downloaded."""

from __future__ import annotations

import io
import math
import subprocess
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw

from registry.iscc.ffmpeg import ffmpeg_exe

__all__ = [
    "make_av",
    "make_docx",
    "make_epub",
    "make_pdf",
    "make_signature",
    "pattern_image",
    "write",
]


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def _pdf_string(text: str) -> bytes:
    return (
        b"("
        + text.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
        + b")"
    )


def make_pdf(pages: list[list[str]], info: dict[str, str] | None = None) -> bytes:
    """A valid PDF with Helvetica text lines per page and an optional information dictionary."""
    objects: list[bytes] = []
    n_pages = len(pages)
    page_ids = [4 + 2 * i for i in range(n_pages)]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = b" ".join(b"%d 0 R" % pid for pid in page_ids)
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % n_pages)
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for lines in pages:
        ops = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
        ops += [_pdf_string(line) + b" Tj T*" for line in lines]
        ops.append(b"ET")
        stream = b"\n".join(ops)
        page_id = 4 + len(objects) - 3
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_ref = b""
    if info:
        entries = b" ".join(b"/" + k.encode() + b" " + _pdf_string(v) for k, v in info.items())
        objects.append(b"<< " + entries + b" >>")
        info_ref = b" /Info %d 0 R" % len(objects)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R" % (len(objects) + 1) + info_ref + b" >>\n")
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


_W_NS = (
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
)
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'


def make_docx(
    paragraphs: list[str], title: str | None = None, description: str | None = None
) -> bytes:
    """A minimal Word document (body paragraphs, a table, a footnote, core properties)."""
    body = "".join(f'<w:p><w:r><w:t xml:space="preserve">{p}</w:t></w:r></w:p>' for p in paragraphs)
    body += (
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell one</w:t></w:r></w:p></w:tc>"
        "<w:tc><w:p><w:r><w:t>cell two</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
        '<w:p><w:r><w:t>see note</w:t></w:r><w:r><w:footnoteReference w:id="1"/></w:r>'
        "<w:del><w:r><w:delText>removed words</w:delText></w:r></w:del></w:p><w:sectPr/>"
    )
    core = (
        _XML_HEAD + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
        'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    )
    if title:
        core += f"<dc:title>{title}</dc:title>"
    if description:
        core += f"<dc:description>{description}</dc:description>"
    core += "</cp:coreProperties>"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            _XML_HEAD
            + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/><Override PartName="/docProps/'
            'core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
            '<Override PartName="/word/footnotes.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.footnotes+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            _XML_HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
            'relationships/metadata/core-properties" Target="docProps/core.xml"/></Relationships>',
        )
        z.writestr(
            "word/_rels/document.xml.rels",
            _XML_HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="rIdN" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/footnotes" Target="footnotes.xml"/></Relationships>',
        )
        z.writestr(
            "word/document.xml",
            f"{_XML_HEAD}<w:document {_W_NS}><w:body>{body}</w:body></w:document>",
        )
        z.writestr(
            "word/footnotes.xml",
            f'{_XML_HEAD}<w:footnotes {_W_NS}><w:footnote w:id="1"><w:p><w:r><w:t>footnote words'
            "</w:t></w:r></w:p></w:footnote></w:footnotes>",
        )
        z.writestr("docProps/core.xml", core)
    return buf.getvalue()


def make_epub(chapters: list[str], title: str = "A Book", description: str | None = None) -> bytes:
    """A minimal EPUB 3: chapters in the spine (reversed, to test spine order), a nav document
    and a cover image outside it."""
    cover = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(cover, "PNG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        z.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:'
            'xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" '
            'media-type="application/oebps-package+xml"/></rootfiles></container>',
        )
        items = "".join(
            f'<item id="c{i}" href="text/ch{i}.xhtml" media-type="application/xhtml+xml"/>'
            for i in range(len(chapters))
        )
        items += '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" '
        items += 'properties="nav"/><item id="cover" href="cover.png" media-type="image/png"/>'
        items += '<item id="css" href="style.css" media-type="text/css"/>'
        spine = "".join(f'<itemref idref="c{i}"/>' for i in reversed(range(len(chapters))))
        desc = f"<dc:description>{description}</dc:description>" if description else ""
        z.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0" encoding="UTF-8"?><package xmlns="http://www.idpf.org/2007/opf" '
            'version="3.0" unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/'
            f'1.1/"><dc:identifier id="id">urn:test</dc:identifier><dc:title>{title}</dc:title>'
            f"{desc}<dc:language>en</dc:language></metadata><manifest>{items}</manifest>"
            f"<spine>{spine}</spine></package>",
        )
        z.writestr(
            "OEBPS/nav.xhtml",
            '<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
            'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>Nav</title></head><body>'
            '<nav epub:type="toc"><ol><li><a href="text/ch0.xhtml">Contents</a></li></ol></nav>'
            "</body></html>",
        )
        z.writestr("OEBPS/cover.png", cover.getvalue())
        z.writestr("OEBPS/style.css", "p { margin: 0 }")
        for i, chapter in enumerate(chapters):
            z.writestr(
                f"OEBPS/text/ch{i}.xhtml",
                '<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
                f"<head><title>Chapter {i}</title><style>p {{ color: red }}</style></head><body>"
                f"<h1>Chapter {i}</h1><p>{chapter}</p><script>var x = 1;</script></body></html>",
            )
    return buf.getvalue()


def pattern_image(
    size: tuple[int, int] = (240, 160), seed: int = 0, mode: str = "RGB"
) -> Image.Image:
    """A deterministic colourful image with structure (gradients, circles, bars)."""
    width, height = size
    img = Image.new("RGB", size)
    pixels = img.load()
    assert pixels is not None
    for y in range(height):
        for x in range(width):
            r = int(127 + 127 * math.sin((x + seed * 7) / 17.0))
            g = int(127 + 127 * math.cos((y - seed * 3) / 11.0))
            b = (x * y + seed * 31) % 256
            pixels[x, y] = (r, g, b)
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2 + 20), fill=(250, 240, 20))
    draw.rectangle((width * 2 // 3, 10, width * 2 // 3 + 25, height - 10), fill=(10, 20, 160))
    return img.convert(mode) if mode != "RGB" else img


def make_av(path: Path, *args: str, seconds: float = 4.0, seed: int = -1) -> Path:
    """Audio/video made by ffmpeg from lavfi sources; `args` are the inputs and encoder options.

    Shorthands: "AUDIO" is a 440 Hz tone mixed with pink noise (stereo, 44.1 kHz), "VIDEO" the
    testsrc pattern (320x240, 25 fps), "FRACTAL" the mandelbrot source. The noise differs on
    every call unless `seed` fixes it.
    """
    sources = {
        "AUDIO": f"sine=frequency=440:duration={seconds},volume=0.5[a];"
        f"anoisesrc=d={seconds}:c=pink:a=0.2:seed={seed}[b];[a][b]amix=inputs=2",
        "VIDEO": f"testsrc=duration={seconds}:size=320x240:rate=25",
        "FRACTAL": f"mandelbrot=size=320x240:rate=25,trim=duration={seconds}",
    }
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y"]
    for arg in args:
        if arg in sources:
            cmd += ["-f", "lavfi", "-i", sources[arg]]
        else:
            cmd.append(arg)
    subprocess.run([*cmd, str(path)], check=True, capture_output=True)
    return path


def make_signature(frames: list[list[int]], time_unit: int = 1000) -> bytes:
    """A binary MPEG-7 signature (the layout ffmpeg's signature filter writes) holding `frames`
    (380 ternary values each), with header fields zero and no coarse segments."""
    bits: list[str] = []

    def put(value: int, count: int) -> None:
        bits.append(format(value, f"0{count}b"))

    put(0, 129)
    put(len(frames), 32)
    put(time_unit, 16)
    put(0, 1 + 32 + 32)
    put(0, 32)  # coarse segments
    put(0, 1)
    for index, frame in enumerate(frames):
        put(0, 1)
        put(index * time_unit // 5, 32)
        put(255, 8)
        put(0, 40)
        for group in range(0, len(frame), 5):
            a, b, c, d, e = frame[group : group + 5]
            put(a * 81 + b * 27 + c * 9 + d * 3 + e, 8)
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    return int(text, 2).to_bytes(len(text) // 8, "big")
