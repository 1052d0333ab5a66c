"""Text extraction and Text-Codes for every supported document format, built in the test."""

from __future__ import annotations

import codecs
from pathlib import Path

import iscc_lib
import pytest
from make_media import make_docx, make_epub, make_pdf, write

from registry.errors import UnsupportedMedia
from registry.iscc import generate, text_of
from registry.iscc.text import TEXT_EXTRACT_MAX_LENGTH, decode_text, gen_text_code

PROSE = (
    "The quick brown fox jumps over the lazy dog while the river keeps running to the sea. "
    "Nobody remembers who planted the old oak tree at the end of the lane, but everyone "
    "agrees that it was there before the houses were built."
)


NEKO = (
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"
)
KREMLIN = "Все счастливые семьи похожи друг на друга, каждая несчастливая семья несчастлива."  # noqa: RUF001


def _collapsed(text: str) -> str:
    return iscc_lib.text_collapse(iscc_lib.text_clean(text))


def _distance(a: str, b: str) -> int:
    da, db = iscc_lib.iscc_decode(a)[4], iscc_lib.iscc_decode(b)[4]
    return bin(int.from_bytes(da, "big") ^ int.from_bytes(db, "big")).count("1")


def _assert_text_result(path: Path, expected_text: str) -> None:
    result = generate(path)
    assert result.mode == "text"
    assert [iscc_lib.iscc_decode(u)[0] for u in result.units] == [
        iscc_lib.MT.META,
        iscc_lib.MT.CONTENT,
        iscc_lib.MT.DATA,
        iscc_lib.MT.INSTANCE,
    ]
    assert iscc_lib.iscc_decode(result.units[1])[1] == iscc_lib.ST.TEXT
    assert result.units[1] == gen_text_code(expected_text).iscc
    assert result.characteristics["characters"] == len(_collapsed(expected_text))
    assert result.datahash == iscc_lib.gen_instance_code_v0(path.read_bytes())["datahash"]


def test_plain_text_and_markdown(tmp_path: Path) -> None:
    for name in ("note.txt", "note.md", "table.csv"):
        path = write(tmp_path / name, PROSE)
        _assert_text_result(path, PROSE)
        assert text_of(path) == PROSE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (codecs.BOM_UTF8 + "Grüße aus Köln".encode(), "Grüße aus Köln"),
        ("Grüße aus Köln".encode("utf-16"), "Grüße aus Köln"),
        ("Grüße aus Köln".encode("utf-32"), "Grüße aus Köln"),
        ("Grüße aus Köln".encode(), "Grüße aus Köln"),
        ("Grüße aus Köln".encode("latin-1"), "Grüße aus Köln"),
        # Tika's reading of 8-bit text: ISO-8859-1 with the C1 range as U+FFFD
        ("\u201cquoted\u201d".encode("cp1252"), "\ufffdquoted\ufffd"),
        # Legacy encodings without a declared charset are detected, as Tika detects them
        (NEKO.encode("euc_jp"), NEKO),
        (NEKO.encode("shift_jis"), NEKO),
        (NEKO.encode("iso2022_jp"), NEKO),
        (KREMLIN.encode("cp1251"), KREMLIN),
        (KREMLIN.encode("koi8_r"), KREMLIN),
    ],
)
def test_decoding(raw: bytes, expected: str) -> None:
    assert decode_text(raw) == expected


def test_short_western_text_is_not_taken_for_another_script() -> None:
    # charset-normalizer calls these UTF-16 or an Urdu code page; Tika reads them as Latin-1
    for words in ("café", "Müller straße", "naïve résumé à la carte"):
        assert decode_text(words.encode("latin-1")) == words


def test_legacy_encoded_text_file_gets_the_text_code_of_its_characters(tmp_path: Path) -> None:
    path = write(tmp_path / "neko.txt", NEKO.encode("euc_jp"))
    assert generate(path).units[1] == gen_text_code(NEKO).iscc


def test_characters_above_bmp_are_kept(tmp_path: Path) -> None:
    # iscc-sdk 0.9.7 (Tika) would see six U+FFFD per emoji; we keep the real characters.
    path = write(tmp_path / "emoji.txt", "Party time \U0001f389 with \U00020000 rare CJK")
    assert "\U0001f389" in text_of(path)
    assert generate(path).characteristics["characters"] == len(
        _collapsed("Party time \U0001f389 with \U00020000 rare CJK")
    )


def test_html_body_text_and_metadata(tmp_path: Path) -> None:
    html = (
        "<!DOCTYPE html><html><head><title>Page &amp; Title</title>"
        '<meta name="description" content="A short summary"><style>p{color:red}</style>'
        "<script>var hidden = 'no';</script></head><body><h1>Heading</h1>"
        "<p>First <b>bold</b> paragraph &eacute;t&eacute;.</p><!-- not text -->"
        "<ul><li>one</li><li>two</li></ul><script>alsoHidden()</script></body></html>"
    )
    path = write(tmp_path / "page.html", html)
    text = text_of(path)
    for word in ("Heading", "bold", "été", "one", "two"):
        assert word in text
    for hidden in ("hidden", "alsoHidden", "color", "not text", "Page"):
        assert hidden not in text
    result = generate(path)
    assert result.name == "Page & Title"
    assert result.description == "A short summary"
    assert (
        result.metahash == iscc_lib.gen_meta_code_v0("Page & Title", "A short summary")["metahash"]
    )


def test_html_declared_charset(tmp_path: Path) -> None:
    markup = "<html><head><meta charset='windows-1252'></head><body>caf\xe9 \u20ac</body></html>"
    path = write(tmp_path / "legacy.html", markup.encode("cp1252"))
    assert "café €" in text_of(path)


def test_xml_character_data(tmp_path: Path) -> None:
    path = write(
        tmp_path / "data.xml", '<?xml version="1.0"?><r a="attr"><x>one</x>two<![CDATA[three]]></r>'
    )
    assert _collapsed(text_of(path)) == "onetwothree"


def test_pdf_text_title_and_pages(tmp_path: Path) -> None:
    pdf = make_pdf(
        [["First page of the report."], ["Second page, (with parens)."]],
        {"Title": "Annual Report", "Subject": "About the year"},
    )
    path = write(tmp_path / "report.pdf", pdf)
    text = text_of(path)
    assert "First page of the report." in text and "Second page, (with parens)." in text
    assert text.index("First") < text.index("Second")
    result = generate(path)
    assert result.mediatype == "application/pdf"
    assert (result.name, result.description) == ("Annual Report", "About the year")
    _assert_text_result(path, text)


def test_pdf_without_text_still_codes_like_iscc_sdk(tmp_path: Path) -> None:
    path = write(tmp_path / "blank.pdf", make_pdf([[]]))
    result = generate(path)
    assert result.characteristics["characters"] == 0
    assert result.units[1] == iscc_lib.gen_text_code_v0("")["iscc"]
    assert result.name == "blank"


def test_docx(tmp_path: Path) -> None:
    path = write(
        tmp_path / "letter.docx", make_docx(["Dear reader,", PROSE], "A Letter", "Kind words")
    )
    text = text_of(path)
    assert "Dear reader," in text and PROSE in text and "cell one" in text
    assert "footnote words" in text  # placed at its reference, as Tika does
    assert "removed words" not in text  # tracked deletion
    result = generate(path)
    assert result.mediatype.endswith("wordprocessingml.document")
    assert (result.name, result.description) == ("A Letter", "Kind words")
    _assert_text_result(path, text)


def test_epub_spine_order_then_other_items(tmp_path: Path) -> None:
    path = write(tmp_path / "book.epub", make_epub(["Alpha chapter.", "Beta chapter."], "My Book"))
    text = text_of(path)
    assert text.index("Beta chapter.") < text.index("Alpha chapter.")  # spine is reversed
    assert "OEBPS/nav.xhtml" in text and "OEBPS/cover.png" in text  # Tika lists non-spine items
    assert "style.css" not in text and "color" not in text and "var x" not in text
    result = generate(path)
    assert result.mediatype == "application/epub+zip"
    assert result.name == "My Book"
    _assert_text_result(path, text)


def test_similar_texts_have_close_codes(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", PROSE * 3)
    b = write(tmp_path / "b.txt", (PROSE * 3).replace("lazy dog", "sleepy dog"))
    c = write(tmp_path / "c.txt", "Completely different words about spreadsheets and taxes. " * 8)
    ca, cb, cc = (generate(p).units[1] for p in (a, b, c))
    assert _distance(ca, cb) < _distance(ca, cc)
    assert _distance(ca, cb) <= 12


def test_extraction_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.iscc.text as text_module

    assert TEXT_EXTRACT_MAX_LENGTH == 10_000_000
    monkeypatch.setattr(text_module, "TEXT_EXTRACT_MAX_LENGTH", 20)
    path = write(tmp_path / "long.txt", "x" * 100)
    assert text_of(path) == "x" * 20


def test_text_errors(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia, match=r"no text could be extracted \(space.txt\)"):
        generate(write(tmp_path / "space.txt", "   \n\n  "))
    with pytest.raises(UnsupportedMedia, match=r"binary content \(fake.txt\)"):
        generate(write(tmp_path / "fake.txt", b"abc\x00\x01\x02"))
    with pytest.raises(UnsupportedMedia, match=r"not a readable PDF.*broken.pdf"):
        generate(write(tmp_path / "broken.pdf", b"%PDF-1.4\nthis is not a pdf"))
    with pytest.raises(UnsupportedMedia, match=r"not well-formed XML.*bad.xml"):
        generate(write(tmp_path / "bad.xml", "<?xml version='1.0'?><a><b></a>"))
    with pytest.raises(UnsupportedMedia, match=r"RTF documents are not supported yet \(x.rtf\)"):
        generate(write(tmp_path / "x.rtf", r"{\rtf1 hello}"))
