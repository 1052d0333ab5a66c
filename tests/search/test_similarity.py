"""Similarity search over the store on SQLite and PostgreSQL: loads, tops up, follows rollbacks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from index_helpers import FULL_ABI, content, make_log

from registry.chain.events import DeclaredEvent
from registry.errors import InvalidCode
from registry.index.events import EventDecoder
from registry.search.similarity import SimilarityIndex, query_units, similar
from registry.store.store import Store

CHAIN = 31337
CONTRACT = "0x" + "34" * 20
DECODER = EventDecoder(0, FULL_ABI)
POEM = "Under the bridge the river keeps its counsel, slow and brown. " * 8


def _declared(text: str, block: int, title: str) -> tuple[DeclaredEvent, str]:
    item = content(text.encode(), name=title)
    log = make_log(
        item["raw"],
        item["digest"],
        iscc_id_body=(1_700_000_000_000_000 + block * 1000) << 12,
        block_number=block,
    )
    event = DECODER.decode(log)
    assert isinstance(event, DeclaredEvent)
    return event, item["iscc"]


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as store:
        yield store


def test_finds_near_duplicates_tops_up_and_follows_rollbacks(store: Store) -> None:
    original, original_code = _declared(POEM, 5, "The River")
    store.apply(CHAIN, CONTRACT, [original], None, 5, original.block_hash)
    index = SimilarityIndex(store)

    edited, edited_code = _declared(POEM.replace("brown", "green", 1), 6, "The River")
    unrelated, _ = _declared(
        "Completely different words about tax law. " * 9, 7, "Quarterly VAT filing checklist"
    )
    store.apply(CHAIN, CONTRACT, [edited], (5, original.block_hash), 6, edited.block_hash)
    store.apply(CHAIN, CONTRACT, [unrelated], (6, edited.block_hash), 7, unrelated.block_hash)

    # The index was built before the later rows: searching tops it up from the store.
    found = similar(store, index, original_code, query_units(original_code))
    ids = [m["declaration"]["iscc_id"] for m in found["matches"]]
    assert ids[:2] == [original.iscc_id, edited.iscc_id]
    assert unrelated.iscc_id not in ids
    top = found["matches"][0]
    assert top["score"] == 1.0 and {u["distance"] for u in top["units"]} == {0}
    text_distance = {u["unit_type"]: u["distance"] for u in found["matches"][1]["units"]}
    assert text_distance["CONTENT-TEXT"] <= 10

    store.rollback(CHAIN, CONTRACT, (5, original.block_hash))
    after = similar(store, index, edited_code, query_units(edited_code))
    assert [m["declaration"]["iscc_id"] for m in after["matches"]] == [original.iscc_id]


def test_only_similarity_units_are_searchable() -> None:
    item = content(b"bytes", name=None)
    instance_only = "ISCC:" + item["iscc"].removeprefix("ISCC:")
    assert [u.unit_type for u in query_units(instance_only)] == ["DATA"]
    with pytest.raises(InvalidCode, match="no unit to compare"):
        query_units("ISCC:IAA26E2JXH27TING")  # an Instance-Code alone
    with pytest.raises(InvalidCode):
        query_units("ISCC:NOTACODE")
