"""Metadata round trip through HTTP, and an ISCC-ID's history and metadata in one answer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.api.state import GENERATION_CHECK_S
from registry.chain.actions import act_direct, make_action
from registry.chain.contract import Registry
from registry.chain.devnet import dev_account
from registry.chain.iscc_id import IsccId
from registry.chain.submit import declare_direct
from registry.iscc.codec import multihash_to_digest
from registry.iscc.generate import generate
from registry.ledger.indexer import Indexer
from registry.metadata import canonicalize
from registry.store.store import Store

DOC = {
    "name": "Harbour at dawn",
    "creator": "Alice Example",
    "license": "https://creativecommons.org/licenses/by/4.0/",
    "rights": "(c) 2026 Alice Example",
    "genai": {"reserved": True},
}


def test_store_and_fetch_by_metahash(client: TestClient) -> None:
    stored = client.post("/v1/metadata", json=DOC)
    assert stored.status_code == 201, stored.text
    metahash = stored.json()["metahash"]
    assert metahash == canonicalize(DOC).metahash
    again = client.post("/v1/metadata", json=dict(reversed(list(DOC.items()))))
    assert again.status_code == 200 and again.json() == {"metahash": metahash, "created": False}
    fetched = client.get(f"/v1/metadata/{metahash}")
    assert fetched.status_code == 200 and fetched.json() == DOC
    assert fetched.content == canonicalize(DOC).canonical


@pytest.mark.parametrize(
    ("call", "status", "kind"),
    [
        (lambda c: c.post("/v1/metadata", json=[1, 2]), 422, "invalid-request"),
        (lambda c: c.post("/v1/metadata", json={"name": 7}), 400, "bad-input"),
        (
            lambda c: c.post("/v1/metadata", json=DOC, params={"expect": "1e20" + "00" * 32}),
            400,
            "bad-input",
        ),
        (lambda c: c.get("/v1/metadata/1e20" + "ab" * 32), 404, "not-found"),
        (lambda c: c.get("/v1/metadata/nothex"), 400, "invalid-code"),
        (
            lambda c: c.post(
                "/v1/metadata", content=b"{not json", headers={"content-type": "application/json"}
            ),
            422,
            "invalid-request",
        ),
    ],
)
def test_metadata_errors(client: TestClient, call: Any, status: int, kind: str) -> None:
    answer = call(client)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == kind


@pytest.mark.chain
def test_iscc_id_answer_has_history_and_metadata(
    client: TestClient, registry: Registry, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "harbour.txt"
    path.write_text("Boats at dawn, nets on the quay, gulls over the water. " * 10)
    work = generate(path)
    metahash = client.post("/v1/metadata", json=DOC).json()["metahash"]
    alice = dev_account(1)
    receipt = declare_direct(registry, alice, work.iscc, work.datahash, metahash, "")
    iscc_id = IsccId.parse(str(receipt.iscc_id))
    Indexer(registry, store).sync()
    before = client.get(f"/iscc-id/{iscc_id}").json()  # now cached by the service
    assert [e["event"] for e in before["history"]] == ["Declared"]
    act_direct(
        registry,
        alice,
        make_action(
            "update", iscc_id, metahash=multihash_to_digest(metahash), gateway="https://a.example/x"
        ),
    )
    act_direct(registry, alice, make_action("transfer", iscc_id, to=dev_account(2).address))
    Indexer(registry, store).sync()
    time.sleep(GENERATION_CHECK_S + 0.1)  # the cache notices the store moved on

    body = client.get(f"/iscc-id/{iscc_id}").json()
    assert [e["event"] for e in body["history"]] == ["Declared", "Updated", "Transferred"]
    assert body["metadata"] == DOC
    current = body["records"][-1]
    assert current["owner"] == dev_account(2).address and current["declarer"] == alice.address
    assert current["gateway"] == "https://a.example/x"


def test_documents_with_features_may_be_larger_but_must_be_well_formed(client: TestClient) -> None:
    from registry.iscc.granular import FeatureSet, features_json

    frames = 6000  # 20 minutes of video: far over the 64 KiB of a plain document
    video = FeatureSet(
        "video", tuple(range(frames)), tuple(range(0, 200 * frames, 200)), (200,) * frames
    )
    document = {"name": "A long film", "features": features_json([video])}
    stored = client.post("/v1/metadata", json=document)
    assert stored.status_code == 201, stored.text
    fetched = client.get(f"/v1/metadata/{stored.json()['metahash']}")
    assert fetched.json()["features"][0]["offsets"][-1] == 200 * (frames - 1)

    document["features"][0]["sizes"][3] = -200
    refused = client.post("/v1/metadata", json=document)
    assert refused.status_code == 400 and "sizes must be integers" in refused.json()["message"]
