"""Fields the API does not send yet (conflicts, metadata, events) render escaped once it does;
declarer-written values never become markup or non-web links."""

from __future__ import annotations

from typing import Any

from registry.api.web import views
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
        "log_index": 0,
        "chain_id": 31337,
        **extra,
    }


def _macros() -> Any:
    return templates.env.get_template("macros.html").module


def test_conflicts_and_metadata_are_escaped_and_only_web_links_link() -> None:
    html = str(
        _macros().card(
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
    assert "which holds priority" in html
    assert "Shared content (&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;), 50 % sure." in html
    # The metadata name titles the card and shows in its metadata; the evidence kind and the
    # licence disagreement each once.
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 4


def test_without_conflicts_the_page_says_so() -> None:
    html = str(_macros().card(_declaration()))
    assert "no conflicts recorded" in html
    assert "Malformed" not in html and "Revoked" not in html


def test_snippet_matches_show_where_the_upload_sits_in_each_work() -> None:
    kinds = [
        {
            "kind": "video",
            "unit": "ms",
            "score": 0.9,
            "offset": 12_300,
            "length": 3000,
            "matched": 14,
        },
        {
            "kind": "text",
            "unit": "chars",
            "score": 0.5,
            "offset": 100,
            "length": 2000,
            "matched": 4,
        },
        {
            "kind": "audio",
            "unit": "ms",
            "score": 0.8,
            "offset": 40_000,
            "length": 5000,
            "matched": 30,
            "interval": [20_000, 40_000],
            "places": [20_000, 30_000, 40_000],
            "place_count": 3,
            "period": 10_000,
        },
    ]
    evidence = [{"part": "video", "weight": 0.77, "figure": 0.9}]
    result = {
        "iscc": {
            "iscc": "ISCC:EAA",
            "filename": HOSTILE,
            "mediatype": "video/mp4",
            "mode": "video",
            "filesize": 10,
            "datahash": "1e20" + "00" * 32,
        },
        "exact": [],
        "similar": {"threshold": 10, "matches": []},
        "snippets": [
            {"declaration": _declaration(), "score": 0.9, "evidence": evidence, "kinds": kinds}
        ],
    }
    html = _render_result(result)
    assert "An excerpt of a declared work." in html
    assert "12.3 s to 15.3 s" in html and "characters 100 to 2,100" in html
    assert "somewhere from 20.0 s to 45.0 s (3 places fit equally, every 10.00 s)" in html
    assert "Excerpt: evidence 90 %" in html and 'title="video 77 %"' in html
    assert "ISCC:MAIGMD2JJHYEQAAA" in html
    assert "<script>" not in html
    result["snippets"] = []
    html = _render_result(result)
    assert "No match" in html


def _render_result(result: dict[str, Any]) -> str:
    related = views.related_declarations(result)
    return templates.env.get_template("results.html").render(
        result=result,
        related=related,
        verdict=views.result_verdict(related),
        uploaded=True,
        share_url=None,
        declare={"chain_id": 31337, "service_url": "http://127.0.0.1:8000"},
    )


def test_a_sealed_declaration_shows_its_commitment_time_and_a_plain_one_does_not() -> None:
    sealed = str(_macros().card(_declaration(kind="sealed", committed_at=1_700_000_000_123)))
    assert "Sealed" in sealed and "1700000000123" in sealed
    plain = str(_macros().card(_declaration(kind="plain", committed_at=None)))
    assert "Sealed" not in plain


def test_case_notes_and_licence_values_are_escaped() -> None:
    """A party's note and the case's reason are the parties' words: text, never markup."""
    case = {
        "id": "0x" + "ab" * 32,
        "kind": "exclusive_overlap",
        "state": "resolved",
        "opened_at": 1_767_225_600,
        "deadline": 1_768_435_200,
        "updated_at": 1_767_225_700,
        "closed_reason": HOSTILE,
        "parties": [{"address": "0x" + "11" * 20, "role": "grantor"}],
        "events": [
            {
                "seq": 0,
                "at": 1_767_225_600,
                "actor": "0x" + "11" * 20,
                "action": "resolve",
                "state": "resolved",
                "note": HOSTILE,
                "signed_at": 1_767_225_600,
                "signature": "0x" + "01" * 65,
                "digest": "0x" + "02" * 32,
            }
        ],
    }
    html = templates.env.get_template("case.html").render(
        case=case, conflict={"overlap": {"text": HOSTILE}, "open": False,
                             "resolved_reason": HOSTILE, "usage_id": None},
        grants=[], works=["ISCC:MAIGMD2JJHYEQAAA"], query="",
    )  # fmt: skip
    assert "<script>" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 4
    assert "Resolved: &#34;&gt;&lt;script&gt;" in html
