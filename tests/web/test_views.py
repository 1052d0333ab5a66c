"""What the pages compute before rendering: relative times, sizes, short values, evidence in
words and its order, one entry per declaration, the verdict's priority holder, unit comparisons,
and the typed data a wallet signs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import iscc_lib
from eth_account import Account
from pictures import picture

from registry.api.web import views
from registry.api.web.explain import compare_codes
from registry.chain.declaration import Declaration, Domain, SignedDeclaration, sign
from registry.chain.devnet import dev_account
from registry.chain.iscc_id import IsccId
from registry.iscc.generate import generate


def test_relative_times() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert views.ago(now - timedelta(seconds=2), now) == "just now"
    assert views.ago(now + timedelta(seconds=30), now) == "just now"  # a chain clock ahead
    assert views.ago(now - timedelta(seconds=59), now) == "59 seconds ago"
    assert views.ago(now - timedelta(minutes=1), now) == "1 minute ago"
    assert views.ago(now - timedelta(hours=5, minutes=59), now) == "5 hours ago"
    assert views.ago(now - timedelta(days=400), now) == "1 year ago"
    assert views.ago(now + timedelta(days=2), now) == "in 2 days"


def test_sizes_and_short_values() -> None:
    assert views.size_text(1) == "1 byte"
    assert views.size_text(999) == "999 bytes"
    assert views.size_text(288_697) == "289 kB"
    assert views.size_text(6_043) == "6.0 kB"
    assert views.size_text(999_999) == "1.0 MB"
    assert views.size_text(2_500_000_000) == "2.5 GB"
    address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert views.short(address) == "0x709979…79C8"
    datahash = "1e20" + "ab" * 31 + "cd"
    assert views.short(datahash) == "1e20ababab…abcd"
    assert views.short("ISCC:MAIGMH3KMSSMAAAA") == "ISCC:MAIGMH3KMSSMAAAA"  # IDs stay whole
    assert views.chain_name(31337) == "Hardhat devnet"
    assert views.chain_name(1) == "Ethereum"
    assert views.chain_name(999) == "chain 999"


def test_evidence_in_words_strongest_first_same_bytes_before_content() -> None:
    evidence = [
        {
            "kind": "content",
            "strength": 1.0,
            "unit_type": "CONTENT-IMAGE",
            "distance": 0,
            "bits": 64,
        },
        {
            "kind": "segment",
            "strength": 0.8,
            "segment_kind": "video",
            "offset": 4000,
            "length": 3000,
            "matched": 6,
        },
        {"kind": "datahash", "strength": 1.0},
        {
            "kind": "content",
            "strength": 0.9,
            "unit_type": "CONTENT-TEXT",
            "distance": 6,
            "bits": 64,
        },
    ]
    assert views.evidence_lines(evidence) == [
        "The same file: both declared exactly the same bytes (same datahash).",
        "The same picture, 100 % alike: their Image-Codes differ in 0 of 64 bits.",
        "The same text, 90 % alike: their Text-Codes differ in 6 of 64 bits.",
        "A shared excerpt of video at 4.0 s to 7.0 s (6 matching segments, 80 % of the "
        "shorter work).",
    ]


def _declaration(body: int, declarer: str = "0x" + "11" * 20, **extra: Any) -> dict[str, Any]:
    return {
        "iscc_id": str(IsccId(body=body << 12, realm=0)),
        "declarer": declarer,
        "owner": declarer,
        "block_number": body,
        "log_index": 0,
        "chain_id": 31337,
        "revoked": False,
        "gateway": "",
        **extra,
    }


def test_each_declaration_once_earliest_first_and_not_an_excerpt_of_itself() -> None:
    own = _declaration(2_000_000_000_000_000)
    earlier = _declaration(1_000_000_000_000_000, "0x" + "22" * 20)
    result = {
        "exact": [own],
        "similar": {
            "matches": [
                {"declaration": own, "score": 1.0, "units": []},
                {"declaration": earlier, "score": 0.9, "units": []},
            ]
        },
        "snippets": [{"declaration": own, "score": 1.0, "kinds": []}],
    }
    related = views.related_declarations(result)
    assert [r.declaration["iscc_id"] for r in related] == [earlier["iscc_id"], own["iscc_id"]]
    first, second = related
    assert first.match is not None and not first.exact and first.excerpt is None
    assert second.exact and second.excerpt is None
    verdict = views.result_verdict(related)
    assert verdict.kind == "not-first" and verdict.holder is earlier
    assert verdict.detail == "This very file was declared 1 time after it."


def test_verdicts_count_open_conflicts_once_and_skip_revoked() -> None:
    a = _declaration(1_000_000_000_000_000, "0x" + "22" * 20)
    b = _declaration(2_000_000_000_000_000)
    a["conflicts"] = [{"other": b, "resolved": False, "holds_priority": True}]
    b["conflicts"] = [{"other": a, "resolved": False, "holds_priority": False}]
    related = views.related_declarations({"exact": [a, b], "similar": {"matches": []}})
    verdict = views.result_verdict(related)
    assert verdict.kind == "declared" and verdict.contested == 1 and verdict.holder is a

    assert views.declaration_verdict(b).holder is a
    assert views.declaration_verdict(b).kind == "yields"
    assert views.declaration_verdict(a).kind == "holds"
    a["revoked"] = True
    assert views.result_verdict(views.related_declarations({"exact": [a, b]})).holder is b
    assert views.declaration_verdict(a).kind == "revoked"


def test_units_compared_on_both_sides_or_said_missing(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    picture(3).save(image)
    other = tmp_path / "b.png"
    picture(4).save(other)
    a, b = generate(image).iscc, generate(other).iscc
    rows = compare_codes(a, b)
    assert [r.unit.unit_type for r in rows] == ["META", "CONTENT-IMAGE", "DATA", "INSTANCE"]
    assert all(r.distance is not None for r in rows)
    assert rows[3].distance > 0  # other bytes
    assert compare_codes(a, a)[3].distance == 0
    # A code without a Meta-Code: that unit, and only that one, is not compared.
    without_meta = "ISCC:" + iscc_lib.gen_iscc_code_v0(
        [u for u in generate(other).units if not u.startswith("ISCC:AA")]
    )["iscc"].removeprefix("ISCC:")
    rows = compare_codes(a, without_meta)
    assert [r.distance is None for r in rows] == [True, False, False, False]


def test_typed_data_a_wallet_signs_verifies_as_the_declaration() -> None:
    declaration = Declaration.create(
        "ISCC:KEC3665PM3B4W657X5T3AF6CY3KIQDELARGNP2QA4P4TX7WNZAJ2P6A",
        "1e20f93bfecdc813a7f852e28fc71d72dfc452f03bc4060ed96976eb94f4bd2a4a1a",
        nonce=2**200 + 7,
        deadline=1_900_000_000,
    )
    domain = Domain(31337, "0x" + "ab" * 20)
    account = dev_account(1)
    typed = declaration.typed_data(domain)
    # JSON as a wallet takes it: no bytes, and a nonce beyond what a JavaScript number holds.
    assert typed["message"]["nonce"] == str(2**200 + 7)
    wallet = Account.sign_typed_data(account.key, full_message=typed)
    assert bytes(wallet.signature) == sign(declaration, domain, account).signature
    signed = SignedDeclaration(declaration, account.address, bytes(wallet.signature), domain)
    signed.verify()
