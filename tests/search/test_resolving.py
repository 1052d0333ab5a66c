"""Classifying and resolving queries against a store filled from crafted logs."""

from __future__ import annotations

import iscc_lib
import pytest
from eth_utils import to_checksum_address
from index_helpers import ISCC_ID_BODY, content, make_log

from registry.chain.iscc_id import IsccId
from registry.errors import InvalidCode
from registry.index.events import EventDecoder
from registry.search.resolve import classify, resolve
from registry.store.store import Store

DECLARER = "0x" + "c3" * 20


@pytest.fixture
def item() -> dict:
    return content(b"resolve me" * 80, name="Resolvable")


@pytest.fixture
def filled(store: Store, item: dict) -> Store:
    event = EventDecoder(0).decode(make_log(item["raw"], item["digest"], declarer=DECLARER))
    store.apply(1, "0x" + "99" * 20, [event], None, event.block_number, event.block_hash)
    return store


def test_classify_normalizes_each_kind(item: dict) -> None:
    iscc_id = str(IsccId(ISCC_ID_BODY, 0))
    digest = item["digest"].hex()
    assert classify(f"  {iscc_id.lower()} ") == ("iscc-id", iscc_id)
    assert classify(iscc_id.removeprefix("ISCC:")) == ("iscc-id", iscc_id)
    assert classify(item["iscc"].removeprefix("ISCC:").lower()) == ("iscc-code", item["iscc"])
    for form in (digest, digest.upper(), "0x" + digest, "1e20" + digest, "0x1e20" + digest):
        assert classify(form) == ("datahash", "1e20" + digest)
    assert classify(DECLARER) == ("declarer", to_checksum_address(DECLARER))


def test_a_single_unit_is_an_exact_code_query(item: dict) -> None:
    unit = "ISCC:" + iscc_lib.iscc_decompose(item["iscc"])[0]
    assert classify(unit) == ("iscc-code", unit)


@pytest.mark.parametrize(
    "query", ["", "hello", "0x1234", "ISCC:", "1e20abcd", "ISCC:MEAAAAAAAAAAAAAA", "zz" * 32]
)
def test_anything_else_is_rejected_with_the_accepted_forms(query: str) -> None:
    with pytest.raises(InvalidCode) as exc:
        classify(query)
    assert "ISCC-ID" in str(exc.value)


def test_iscc_id_v0_is_rejected() -> None:
    v0 = "ISCC:" + iscc_lib.encode_component(iscc_lib.MT.ID, 0, 0, 64, bytes(8))
    with pytest.raises(InvalidCode, match="v0"):
        classify(v0)


def test_resolve_runs_the_matching_lookup(filled: Store, item: dict) -> None:
    iscc_id = str(IsccId(ISCC_ID_BODY, 0))
    for query, kind in [
        (iscc_id, "iscc-id"),
        (item["iscc"], "iscc-code"),
        (item["datahash"], "datahash"),
        (DECLARER.upper().replace("0X", "0x"), "declarer"),
    ]:
        resolution = resolve(filled, query)
        assert resolution.kind == kind
        assert [r.iscc_id for r in resolution.records] == [iscc_id]
        assert resolution.to_dict()["records"][0]["iscc_id"] == iscc_id
    assert resolve(filled, "0x" + "00" * 20).records == []
    assert resolve(filled, "1e20" + "00" * 32).records == []
