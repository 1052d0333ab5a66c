"""Image-Codes: formats, normalization steps, similarity, embedded metadata, decoding guards."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from xml.etree import ElementTree

import iscc_lib
import pytest
from make_media import pattern_image, write
from PIL import Image, ImageOps, PngImagePlugin
from pillow_heif import register_heif_opener

from registry.errors import UnsupportedMedia
from registry.iscc import generate
from registry.iscc.image import image_normalize, image_trim_tolerant
from registry.iscc.svg import svg_native_size, svg_rasterize


def _distance(a: str, b: str) -> int:
    da, db = iscc_lib.iscc_decode(a)[4], iscc_lib.iscc_decode(b)[4]
    return bin(int.from_bytes(da, "big") ^ int.from_bytes(db, "big")).count("1")


def _save(img: Image.Image, path: Path, **options: object) -> Path:
    register_heif_opener()  # lets Pillow write .heic samples
    img.save(path, **options)
    return path


@pytest.mark.parametrize(
    ("name", "mediatype"),
    [
        ("img.png", "image/png"),
        ("img.jpg", "image/jpeg"),
        ("img.gif", "image/gif"),
        ("img.webp", "image/webp"),
        ("img.tiff", "image/tiff"),
        ("img.bmp", "image/bmp"),
        ("img.avif", "image/avif"),
        ("img.heic", "image/heic"),
    ],
)
def test_formats_give_close_image_codes(tmp_path: Path, name: str, mediatype: str) -> None:
    img = pattern_image((240, 160))
    reference = generate(_save(img, tmp_path / "ref.png")).units[1]
    path = _save(img, tmp_path / name)
    result = generate(path)
    assert result.mode == "image"
    assert result.mediatype == mediatype
    assert iscc_lib.iscc_decode(result.units[1])[:2] == (iscc_lib.MT.CONTENT, iscc_lib.ST.IMAGE)
    assert result.characteristics == {"width": 240, "height": 160}
    assert result.name == "img"
    assert result.datahash == iscc_lib.gen_instance_code_v0(path.read_bytes())["datahash"]
    assert _distance(result.units[1], reference) <= 8  # lossy/palette encodings stay close


def test_resized_and_recompressed_images_are_close(tmp_path: Path) -> None:
    img = pattern_image((400, 300), seed=2)
    a = generate(_save(img, tmp_path / "a.png")).units[1]
    b = generate(_save(img.resize((200, 150)), tmp_path / "b.jpg", quality=60)).units[1]
    other = generate(_save(pattern_image((400, 300), seed=9).rotate(90), tmp_path / "c.png"))
    assert _distance(a, b) <= 6
    assert _distance(a, b) < _distance(a, other.units[1])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = pattern_image((120, 80))
    upright = generate(_save(img, tmp_path / "upright.png")).units[1]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    stored = img.transpose(Image.Transpose.ROTATE_90)
    rotated = generate(_save(stored, tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95))
    assert rotated.characteristics == {"width": 80, "height": 120}  # stored size, as exiv2
    assert _distance(upright, rotated.units[1]) <= 6


def test_transparency_is_filled_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (16, 16, 48, 48))
    on_white = Image.new("RGB", (64, 64), (255, 255, 255))
    on_white.paste((0, 0, 255), (16, 16, 48, 48))
    assert image_normalize(rgba) == image_normalize(on_white)


def test_tolerant_border_trim(tmp_path: Path) -> None:
    core = pattern_image((100, 80))
    framed = ImageOps.expand(ImageOps.expand(core, 20, (250, 252, 255)), 15, (10, 10, 10))
    assert image_trim_tolerant(framed).size == core.size  # two nested frames, two passes
    assert (
        generate(_save(framed, tmp_path / "f.png")).units[1]
        == generate(_save(core, tmp_path / "c.png")).units[1]
    )
    # a smooth one-sided gradient (sky) is not a border
    sky = Image.linear_gradient("L").resize((64, 64)).convert("RGB")
    assert image_trim_tolerant(sky).size == (64, 64)


@pytest.mark.parametrize(
    ("mode", "ext"),
    [("L", "png"), ("P", "png"), ("RGBA", "png"), ("LA", "png"), ("CMYK", "tiff"), ("I;16", "png")],
)
def test_image_modes(tmp_path: Path, mode: str, ext: str) -> None:
    source = pattern_image((64, 48))
    img = Image.new("I;16", (64, 48), 1000) if mode == "I;16" else source.convert(mode)
    result = generate(_save(img, tmp_path / f"m.{ext}"))
    assert result.mode == "image"
    assert result.characteristics == {"width": 64, "height": 48}


def test_embedded_title_and_description(tmp_path: Path) -> None:
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
        '22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/'
        '1.1/"><dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbour &lt;b&gt;at dawn&lt;/b&gt;'
        '</rdf:li></rdf:Alt></dc:title><dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
        "Boats and mist</rdf:li></rdf:Alt></dc:description></rdf:Description></rdf:RDF>"
        "</x:xmpmeta>"
    )
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    png = generate(_save(pattern_image((64, 64)), tmp_path / "p.png", pnginfo=info))
    jpg = generate(_save(pattern_image((64, 64)), tmp_path / "p.jpg", xmp=xmp.encode()))
    for result in (png, jpg):
        assert result.name == "Harbour at dawn"  # tags stripped as iscc-sdk's text_sanitize
        assert result.description == "Boats and mist"
        meta = iscc_lib.gen_meta_code_v0("Harbour at dawn", "Boats and mist")
        assert (result.units[0], result.metahash) == (meta["iscc"], meta["metahash"])
    exif = Image.Exif()
    exif[0x9C9B] = "Windows Title".encode("utf-16-le") + b"\x00\x00"
    xp = generate(_save(pattern_image((64, 64)), tmp_path / "xp.jpg", exif=exif.tobytes()))
    assert xp.name == "Windows Title"


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    frames = [pattern_image((60, 40), seed=s) for s in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "first.gif")
    assert generate(tmp_path / "anim.gif").units[1] == generate(tmp_path / "first.gif").units[1]


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = write(tmp_path / "bomb.png", _png_header_only(30000, 30000))  # 900 Mpx claimed
    with pytest.raises(UnsupportedMedia, match=r"decompression bomb.*\(bomb.png\)"):
        generate(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    small = _save(pattern_image((100, 100)), tmp_path / "small.png")  # 10,000 > 2 x 1000
    with pytest.raises(UnsupportedMedia, match="decompression bomb"):
        generate(small)


def test_undecodable_images(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia, match=r"not a decodable image.*\(random.jpg\)"):
        generate(write(tmp_path / "random.jpg", bytes(range(256)) * 20))
    png = io.BytesIO()
    pattern_image((200, 200)).save(png, "PNG")
    truncated = write(tmp_path / "truncated.png", png.getvalue()[: len(png.getvalue()) // 2])
    with pytest.raises(UnsupportedMedia, match=r"not a decodable image.*\(truncated.png\)"):
        generate(truncated)
    with pytest.raises(UnsupportedMedia, match=r"not well-formed SVG.*\(cut.svg\)"):
        generate(write(tmp_path / "cut.svg", '<svg xmlns="http://www.w3.org/2000/svg"><rect'))
    bomb = '<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>'
    with pytest.raises(UnsupportedMedia, match=r"declares entities.*\(bomb.svg\)"):
        generate(write(tmp_path / "bomb.svg", bomb))


SVG_DRAWING = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 200 120">'
    "<title>Red Circle</title><desc>A drawing</desc>"
    '<rect width="200" height="120" fill="#eef"/><circle cx="70" cy="60" r="40" fill="red"/>'
    '<path d="M120 20 L190 100 L120 100 Z" fill="navy"/></svg>'
)


def test_svg_is_rendered_and_coded_as_an_image(tmp_path: Path) -> None:
    drawing = generate(write(tmp_path / "drawing.svg", SVG_DRAWING.format(w=200, h=120)))
    assert drawing.mode == "image" and drawing.mediatype == "image/svg+xml"
    assert drawing.name == "Red Circle" and drawing.description == "A drawing"
    assert (drawing.characteristics["width"], drawing.characteristics["height"]) == (200, 120)
    # the same drawing as a PNG of the same pixels gets the same Image-Code
    content = SVG_DRAWING.format(w=200, h=120).encode()
    rendered = svg_rasterize(tmp_path / "drawing.svg", ElementTree.fromstring(content), content)
    rendered.save(tmp_path / "drawing.png")
    assert generate(tmp_path / "drawing.png").units[1] == drawing.units[1]
    # at twice the size (in CSS units) the picture is the same: a near-identical code
    large = generate(write(tmp_path / "large.svg", SVG_DRAWING.format(w="4.1667in", h="2.5in")))
    assert large.characteristics["width"] == 400
    assert _distance(large.units[1], drawing.units[1]) <= 4
    assert svg_native_size(ElementTree.fromstring('<svg viewBox="0 0 50 20" width="100"/>')) == (
        100,
        40,
    )
