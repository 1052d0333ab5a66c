"""Fields the API does not send yet (conflicts, metadata, events) render escaped once it does;
declarer-written values never become markup or non-web links."""

from __future__ import annotations

from typing import Any

from registry.api.web.pages import templates

HOSTILE = '"><script>alert(1)</script>'


def _declaration(**extra: Any) -> dict[str, Any]:
    return {
        "iscc_id": "ISCC:MAIGMD2JJHYEQAAA",
        "iscc_code": None,
        "iscc_code_raw": "0x00",
        "datahash": "1e20" + "00" * 32,
        "metahash": None,
        "declarer": "0x" + "11" * 20,
        "owner": "0x" + "11" * 20,
        "revoked": False,
        "gateway": "",
        "valid": True,
        "invalid_reason": None,
        "block_number": 7,
        **extra,
    }


def _macros() -> Any:
    return templates.env.get_template("macros.html").module


def test_conflicts_and_metadata_are_escaped_and_only_web_links_link() -> None:
    html = str(
        _macros().declaration(
            _declaration(
                gateway="https://example.com/{iscc-id}",
                conflicts=[
                    {
                        "other": _declaration(iscc_id="ISCC:MAIGMD2JJHYEQAAB"),
                        "holds_priority": False,
                        "evidence": [{"kind": HOSTILE, "strength": 0.5}],
                        "resolved": False,
                        "disagreements": [{"field": "license", "earlier": HOSTILE, "later": "x"}],
                    }
                ],
                metadata={
                    "name": HOSTILE,
                    "license": "javascript:alert(1)",
                    "acquire": "https://shop.example/buy",
                    "rights": "© Someone",
                },
            )
        )
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert "<dd>javascript:alert(1)</dd>" in html
    assert '<a href="https://shop.example/buy"' in html
    assert '<a href="https://example.com/ISCC:MAIGMD2JJHYEQAAA"' in html
    assert "no conflicts recorded" not in html
    assert '<a href="/declaration/ISCC:MAIGMD2JJHYEQAAB">' in html
    assert "which holds priority" in html and "strength 0.50" in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3


def test_without_conflicts_the_page_says_so() -> None:
    html = str(_macros().declaration(_declaration()))
    assert "no conflicts recorded" in html
    assert "Malformed" not in html and "Revoked" not in html
