"""Text-Code: plain text extracted from a document, cleaned as iscc-sdk does, then fingerprinted.

iscc-sdk 0.9.7 extracts text with Apache Tika (iscc-tika 0.6.0) for every format but PDF. We
extract with the standard library, aiming at the same *character sequence*: the Text-Code only
sees text after `text_collapse` (lower case, no whitespace, punctuation, marks or control
characters), so differences in line breaks, tabs and spacing never change a code, while
omitted or extra words do. Format notes:

- plain text (txt, md, csv and other text/*), JSON: the decoded file, as Tika gives it.
  Decoding: BOM (UTF-8/16/32), else UTF-8, else the charset detected from the bytes (chardet
  5, the Python port of Mozilla's universal detector that Tika runs as juniversalchardet) when
  it is a multi-byte East Asian one (EUC-JP, Shift_JIS, ISO-2022-JP, GB18030, Big5, EUC-KR)
  or a Cyrillic or Greek code page in a text mostly of such letters, else ISO-8859-1 with
  bytes 0x80-0x9F as U+FFFD (what Tika reports for Western 8-bit text, even where
  Windows-1252 was meant). Measured with iscc-sdk 0.9.7 on each of these encodings.
  Deviations: for some short Western texts with characters in 0x80-0x9F (curly quotes,
  dashes, euro) Tika's detector settles on a Windows code page and decodes them, where we
  give U+FFFD (texts without them decode alike); Tika 0.6.0 turns characters above U+FFFF
  (emoji, rare CJK) into six U+FFFD each, we decode them correctly.
- HTML/XHTML: text of the document body without script, style and head (title and meta go
  to the Meta-Code, as Tika reports them as metadata), entities decoded.
- XML: the character data of all elements (attributes are not text, as in Tika).
- PDF (pypdfium2, as iscc-sdk), DOCX and EPUB: see `registry.iscc.document`.

Like iscc-sdk, extraction stops at 10,000,000 characters.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from xml.parsers import expat

import chardet
import iscc_lib

from registry.errors import UnsupportedMedia

__all__ = [
    "TEXT_EXTRACT_MAX_LENGTH",
    "TextCode",
    "decode_text",
    "detect_encoding",
    "gen_text_code",
    "html_text",
    "text_clean",
]

TEXT_EXTRACT_MAX_LENGTH = 10_000_000
"""iscc-sdk caps extracted text here (a constant, so every party derives the same code)."""

_READ_CHUNK = 1 << 20
HTML_READ_LIMIT = 256 << 20
"""Markup beyond this is not read (its text would pass the extraction limit in any real page)."""
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)

# Elements whose character data Tika's HTML handler never reports as body text.
_HTML_SKIP = frozenset({"script", "style", "title", "head"})
_HTML_BLOCKS = frozenset(
    {"p", "div", "li", "td", "th", "tr", "br", "h1", "h2", "h3", "h4", "h5", "h6", "pre"}
    | {"blockquote", "section", "article", "table", "ul", "ol"}
)


@dataclass(frozen=True)
class TextCode:
    """A Text-Code unit and the number of characters it was computed from (after collapsing)."""

    iscc: str
    characters: int


def text_clean(text: str) -> str:
    """Normalization applied to extracted text before the Text-Code (iscc-lib's `text_clean`)."""
    return iscc_lib.text_clean(text)


def gen_text_code(text: str, bits: int = 64) -> TextCode:
    """Text-Code of extracted text: `text_clean` then `gen_text_code_v0`, as iscc-sdk does."""
    result = iscc_lib.gen_text_code_v0(text_clean(text), bits)
    return TextCode(iscc=result["iscc"], characters=result["characters"])


def _encoding_of(head: bytes) -> tuple[str | None, int]:
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    return None, 0


def _read_head(path: Path, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of a file, and whether the file goes on beyond them."""
    with open(path, "rb") as stream:
        data = stream.read(limit)
        return data, bool(stream.read(1))


_C1_CONTROLS = {code: "\ufffd" for code in range(0x80, 0xA0)}

# What detection may choose, by Python codec name, and the codec we decode with: the East Asian
# multi-byte encodings and the non-Latin 8-bit code pages, which Tika detects. Supersets where
# Java's decoders (Tika's) accept more than the detected name's codec: GB2312 text is read as
# GB18030, Shift_JIS with Microsoft's extensions.
_MULTI_BYTE = {
    "euc_jp": "euc_jp",
    "euc_jis_2004": "euc_jp",
    "euc_jisx0213": "euc_jp",
    "shift_jis": "cp932",
    "cp932": "cp932",
    "shift_jis_2004": "cp932",
    "shift_jisx0213": "cp932",
    "iso2022_jp": "iso2022_jp",
    "iso2022_jp_1": "iso2022_jp_1",
    "iso2022_jp_2": "iso2022_jp_2",
    "iso2022_jp_ext": "iso2022_jp_ext",
    "iso2022_kr": "iso2022_kr",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "gb18030": "gb18030",
    "hz": "hz",
    "big5": "big5",
    "big5hkscs": "big5hkscs",
    "cp950": "cp950",
    "euc_kr": "euc_kr",
    "cp949": "cp949",
    "johab": "johab",
}
_NON_LATIN_8BIT = frozenset(
    {"cp1251", "koi8_r", "koi8_u", "iso8859_5", "cp866", "mac_cyrillic"}
    | {"cp1253", "iso8859_7", "mac_greek"}
)
_DETECT_SAMPLE = 1 << 20
_ASCII_LETTERS = re.compile(rb"[A-Za-z]")


def _latin1(data: bytes) -> str:
    # Tika reads undeclared 8-bit text as ISO-8859-1 and reports its C1 control range
    # (0x80-0x9F, where Windows-1252 has curly quotes, dashes, euro) as U+FFFD.
    return data.decode("latin-1").translate(_C1_CONTROLS)


def detect_encoding(data: bytes) -> str | None:
    """The codec of undeclared non-UTF-8 text, when detection names one Tika would decode
    with; None for Western 8-bit text (and anything uncertain), which Tika reads as ISO-8859-1.

    chardet 5 is used rather than charset-normalizer because it is the algorithm Tika runs:
    charset-normalizer took short cp1251 Russian for KOI8-R, and short Latin-1 for UTF-16 or
    an Urdu code page. An 8-bit Cyrillic or Greek answer still counts only when most letters
    are outside ASCII, as in text written in those scripts.
    """
    sample = data[:_DETECT_SAMPLE]
    name = chardet.detect(sample)["encoding"]
    if not name:
        return None
    try:
        found = codecs.lookup(name).name.replace("-", "_")
    except LookupError:
        return None
    if found in _MULTI_BYTE:
        return _MULTI_BYTE[found]
    if found in _NON_LATIN_8BIT:
        high = sum(1 for byte in sample if byte >= 0x80)
        if high >= len(_ASCII_LETTERS.findall(sample)):
            return found
    return None


def decode_text(
    data: bytes, name: str = "<bytes>", encoding: str | None = None, truncated: bool = False
) -> str:
    """Decode the bytes of a text file: BOM, else the declared encoding, else UTF-8, else the
    detected East Asian, Cyrillic or Greek encoding (`detect_encoding`), else ISO-8859-1 the
    way Tika decodes it (bytes 0x80-0x9F become U+FFFD).

    With `truncated`, an incomplete multi-byte sequence at the end is dropped instead of failing.
    """
    bom_encoding, skip = _encoding_of(data[:4])
    if bom_encoding:
        encoding = bom_encoding
    elif b"\x00" in data[:8192]:
        # NUL bytes never occur in 8-bit or UTF-8 text; UTF-16/32 text carries a BOM.
        raise UnsupportedMedia(f"not a text file: binary content ({name})")
    if encoding:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            encoding = None
    if encoding in ("latin-1", "iso8859-1", "ascii"):
        return _latin1(data)
    # ISO-2022 text is 7-bit, valid UTF-8 too: its escape sequences send it to detection.
    escaped = not encoding and b"\x1b" in data[:_DETECT_SAMPLE]
    candidates = [encoding] if bom_encoding or escaped else [encoding, "utf-8"]
    for candidate in candidates:
        if candidate is None:
            continue
        decoder = codecs.getincrementaldecoder(candidate)("strict")
        try:
            return decoder.decode(data[skip:], final=not truncated)
        except UnicodeDecodeError:
            if bom_encoding:
                raise UnsupportedMedia(f"text is not valid {candidate} ({name})") from None
    detected = detect_encoding(data)
    if detected is None:
        return _latin1(data)
    # Java's decoders, which Tika reads with, put U+FFFD for a malformed sequence.
    decoder = codecs.getincrementaldecoder(detected)("replace")
    return decoder.decode(data, final=not truncated)


class _Capped:
    """Collects text up to the extraction limit."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    @property
    def full(self) -> bool:
        return self.size >= TEXT_EXTRACT_MAX_LENGTH

    def add(self, text: str) -> None:
        if self.full:
            return
        text = text[: TEXT_EXTRACT_MAX_LENGTH - self.size]
        self.parts.append(text)
        self.size += len(text)

    def text(self) -> str:
        return "".join(self.parts)


def plain_text(path: Path) -> str:
    """A plain text file decoded (at most the extraction limit of characters)."""
    # No encoding needs more than 4 bytes a character, so this many bytes always suffice.
    data, more = _read_head(path, 4 * TEXT_EXTRACT_MAX_LENGTH + 4)
    return decode_text(data, path.name, truncated=more)[:TEXT_EXTRACT_MAX_LENGTH]


class _HtmlText(HTMLParser):
    """Body text of an HTML document the way Tika reports it (see module docstring)."""

    def __init__(self, out: _Capped) -> None:
        super().__init__(convert_charrefs=True)
        self.out = out
        self.skip: list[str] = []
        self.title: str | None = None
        self.meta: dict[str, str] = {}
        self._title_parts: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and "head" in self.skip:
            self.skip = [t for t in self.skip if t != "head"]
        if tag == "meta":
            values = dict(attrs)
            key, content = (values.get("name") or "").lower(), values.get("content")
            if key and content and key not in self.meta:
                self.meta[key] = content
            return
        if tag in _HTML_SKIP:
            self.skip.append(tag)
            if tag == "title" and self.title is None:
                self._title_parts = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            self.handle_starttag(tag, attrs)
        elif tag in ("br", "p", "div", "hr"):
            self.out.add("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIP and tag in self.skip:
            while self.skip and self.skip.pop() != tag:
                pass
            if tag == "title" and self._title_parts is not None:
                self.title = "".join(self._title_parts)
                self._title_parts = None
        elif tag in _HTML_BLOCKS:
            # A separator keeps words of adjacent blocks apart in the cleaned text.
            self.out.add("\n")

    def handle_data(self, data: str) -> None:
        if self._title_parts is not None and self.skip and self.skip[-1] == "title":
            self._title_parts.append(data)
        if not self.skip:
            self.out.add(data)


def _html_parse(path: Path) -> _HtmlText:
    data, more = _read_head(path, HTML_READ_LIMIT)
    declared = None
    if not _encoding_of(data[:4])[0] and (match := _META_CHARSET_RE.search(data[:1024])):
        declared = match.group(1).decode("ascii").lower()
    return _html_feed(decode_text(data, path.name, declared, truncated=more))


def _html_feed(markup: str) -> _HtmlText:
    parser = _HtmlText(_Capped())
    for pos in range(0, len(markup), _READ_CHUNK):
        parser.feed(markup[pos : pos + _READ_CHUNK])
        if parser.out.full:
            break
    parser.close()
    return parser


def html_text(path: Path) -> str:
    """Visible body text of an HTML or XHTML file."""
    return _html_parse(path).out.text()


def html_markup_text(markup: str) -> str:
    """Visible body text of HTML markup given as a string."""
    return _html_feed(markup).out.text()


def html_metadata(path: Path) -> dict[str, str]:
    """Title (<title>) and description (<meta name="description">), as Tika reports them."""
    parser = _html_parse(path)
    found: dict[str, str] = {}
    for field in ("name", "description", "meta"):
        if value := parser.meta.get(f"iscc_{field}"):
            found[field] = value
    if "name" not in found and parser.title:
        found["name"] = parser.title
    if "description" not in found and (desc := parser.meta.get("description")):
        found["description"] = desc
    return found


def xml_text(path: Path) -> str:
    """Character data of an XML document, in document order (streamed through expat)."""
    out = _Capped()
    parser = expat.ParserCreate()
    parser.CharacterDataHandler = out.add
    # Bounded entity expansion: a document may not pull in external files or the network.
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        with open(path, "rb") as stream:
            while (chunk := stream.read(_READ_CHUNK)) and not out.full:
                parser.Parse(chunk, False)
            if not out.full:
                parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise UnsupportedMedia(f"not well-formed XML: {exc} ({path.name})") from None
    return out.text()
