"""Meta-Code: title and description from embedded metadata or the file name, as iscc-sdk does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from os.path import splitext
from pathlib import Path

import iscc_lib

from registry.errors import InputError

__all__ = ["MetaCode", "fields_from_tags", "gen_meta_code", "name_from_path", "sanitize"]

_SCRIPT_RE = re.compile(r"<script[^>]*>.*?</script>", flags=re.DOTALL | re.IGNORECASE)
_STYLE_RE = re.compile(r"<style[^>]*>.*?</style>", flags=re.DOTALL | re.IGNORECASE)
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class MetaCode:
    """A Meta-Code unit with the normalized fields it was computed from."""

    iscc: str
    name: str
    description: str | None
    meta: str | None
    metahash: str


def name_from_path(path: str | Path) -> str:
    """Fallback title from a file name: stem with "-" and "_" as spaces (iscc-sdk's rule)."""
    name = splitext(Path(path).name)[0]
    return name.replace("-", " ").replace("_", " ")


class _TagStripper(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def sanitize(value: str) -> str:
    """Plain one-line text from an untrusted metadata value (iscc-sdk's `text_sanitize`).

    iscc-sdk strips tags with bleach; the standard library's HTML parser does the same for
    metadata values (drop script/style, tags and comments, decode entities, collapse spaces).
    """
    value = _STYLE_RE.sub("", _SCRIPT_RE.sub("", value))
    stripper = _TagStripper()
    stripper.feed(value)
    stripper.close()
    text = "".join(stripper.parts)
    return _SPACE_RE.sub(" ", text).strip()


def _clean_name(name: str | None) -> str:
    text = iscc_lib.text_clean(name or "")
    text = iscc_lib.text_remove_newlines(text)
    return iscc_lib.text_trim(text, iscc_lib.META_TRIM_NAME)


def gen_meta_code(
    path: str | Path,
    name: str | None = None,
    description: str | None = None,
    meta: str | None = None,
    bits: int = 64,
) -> MetaCode:
    """Meta-Code from embedded name/description/meta, falling back to the file name for the name.

    As iscc-sdk's `code_meta`: the name counts as missing if it is empty after cleaning.
    The metahash is iscc-lib's (blake3 of the meta payload if given, else of name+description).
    """
    if not _clean_name(name):
        name = name_from_path(path)
    if not _clean_name(name):
        raise InputError(f"cannot derive a title for the Meta-Code from the file name ({path})")
    try:
        result = iscc_lib.gen_meta_code_v0(name, description or None, meta or None, bits)
    except ValueError as exc:
        raise InputError(f"embedded metadata is invalid: {exc} ({Path(path).name})") from None
    return MetaCode(
        iscc=result["iscc"],
        name=result["name"],
        description=result.get("description"),
        meta=result.get("meta"),
        metahash=result["metahash"],
    )


def fields_from_tags(tags: dict[str, str], table: dict[str, list[str]]) -> dict[str, str]:
    """Meta-Code fields from media tags (lower-case keys): per field the first non-empty tag."""
    found: dict[str, str] = {}
    for name, keys in table.items():
        value = next((tags[key] for key in keys if tags.get(key)), None)
        if value is not None:
            found[name] = value
    return found
