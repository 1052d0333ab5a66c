"""Search and match through HTTP: near-duplicates of declared files are found, strangers not."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pictures import picture
from PIL import Image

from registry.api import create_app
from registry.chain.actions import act_direct, make_action
from registry.chain.contract import Registry
from registry.chain.devnet import dev_account
from registry.chain.iscc_id import IsccId
from registry.chain.submit import declare_direct
from registry.config import Settings
from registry.iscc.generate import generate
from registry.ledger.indexer import Indexer
from registry.store.store import Store

pytestmark = pytest.mark.chain


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def gallery(tmp_path: Path, registry: Registry, store: Store) -> dict[str, Any]:
    """Two declared pictures by two declarers."""
    paths = {}
    for name, seed in (("harbour.png", 1), ("meadow.png", 2)):
        path = tmp_path / name
        picture(seed).save(path)
        paths[name] = path
    alice, bob = dev_account(1), dev_account(2)
    declared = {}
    for who, name in ((alice, "harbour.png"), (bob, "meadow.png")):
        result = generate(paths[name])
        receipt = declare_direct(registry, who, result.iscc, result.datahash, result.metahash)
        declared[name] = {"result": result, "iscc_id": str(receipt.iscc_id), "by": who}
    Indexer(registry, store).sync()
    return {"paths": paths, "declared": declared}


def _match(client: TestClient, data: bytes, filename: str, **params: Any) -> Any:
    return client.post("/v1/match", params={"filename": filename, **params}, content=data)


def test_exact_copy_and_reencoded_copy_are_found(
    client: TestClient, gallery: dict[str, Any]
) -> None:
    harbour = gallery["declared"]["harbour.png"]
    original = gallery["paths"]["harbour.png"].read_bytes()
    exact = _match(client, original, "harbour.png")
    assert exact.status_code == 200, exact.text
    body = exact.json()
    assert [d["iscc_id"] for d in body["exact"]] == [harbour["iscc_id"]]
    assert body["iscc"]["iscc"] == harbour["result"].iscc
    assert body["similar"]["matches"][0]["declaration"]["iscc_id"] == harbour["iscc_id"]

    # Smaller, JPEG-compressed, renamed: other bytes, same picture.
    buffer = io.BytesIO()
    picture(1).resize((200, 150)).save(buffer, "JPEG", quality=60)
    copy = _match(client, buffer.getvalue(), "holiday.jpg").json()
    assert copy["exact"] == []
    top = copy["similar"]["matches"][0]
    assert top["declaration"]["iscc_id"] == harbour["iscc_id"]
    image_unit = {u["unit_type"]: u for u in top["units"]}["CONTENT-IMAGE"]
    assert image_unit["distance"] <= 10
    assert all(
        m["declaration"]["iscc_id"] != gallery["declared"]["meadow.png"]["iscc_id"]
        or "CONTENT-IMAGE" not in {u["unit_type"] for u in m["units"]}
        for m in copy["similar"]["matches"]
    )


def test_unknown_file_matches_nothing(client: TestClient, gallery: dict[str, Any]) -> None:
    stranger = _match(client, _png(picture(77).rotate(90)), "unrelated-shapes.png").json()
    assert stranger["exact"] == []
    image_matches = [
        m
        for m in stranger["similar"]["matches"]
        if "CONTENT-IMAGE" in {u["unit_type"] for u in m["units"]}
    ]
    assert image_matches == []


def test_search_by_code_and_by_single_unit(client: TestClient, gallery: dict[str, Any]) -> None:
    meadow = gallery["declared"]["meadow.png"]
    by_code = client.get("/v1/search", params={"iscc": meadow["result"].iscc}).json()
    assert by_code["matches"][0]["declaration"]["iscc_id"] == meadow["iscc_id"]
    assert by_code["matches"][0]["score"] == 1.0
    nearest_images = by_code["by_unit"]["CONTENT-IMAGE"]
    assert nearest_images[0] == {
        "iscc_id": meadow["iscc_id"],
        "declarer": meadow["by"].address,
        "distance": 0,
    }
    assert set(by_code["by_unit"]) == set(by_code["unit_types"])
    content_unit = next(u for u in meadow["result"].units if u.startswith("ISCC:EE"))
    by_unit = client.get("/v1/search", params={"iscc": content_unit, "threshold": 0}).json()
    assert by_unit["unit_types"] == ["CONTENT-IMAGE"]
    assert [m["declaration"]["iscc_id"] for m in by_unit["matches"]] == [meadow["iscc_id"]]


def test_revoked_declarations_drop_out(
    client: TestClient, gallery: dict[str, Any], registry: Registry, store: Store
) -> None:
    harbour = gallery["declared"]["harbour.png"]
    act_direct(registry, harbour["by"], make_action("revoke", IsccId.parse(harbour["iscc_id"])))
    Indexer(registry, store).sync()
    query = {"iscc": harbour["result"].iscc, "threshold": 0}
    assert client.get("/v1/search", params=query).json()["matches"] == []
    kept = client.get("/v1/search", params={**query, "include_revoked": True}).json()
    assert kept["matches"][0]["declaration"]["revoked"] is True


@pytest.mark.parametrize(
    ("params", "status", "kind"),
    [
        ({"iscc": "ISCC:NOPE"}, 400, "invalid-code"),
        ({"iscc": "ISCC:MAIGBISBQHSAAAAA"}, 400, "invalid-code"),
        ({"iscc": "ISCC:EEA4GQZQTY6J5DTH", "threshold": 65}, 422, "invalid-request"),
        ({"iscc": "ISCC:EEA4GQZQTY6J5DTH", "limit": 0}, 422, "invalid-request"),
    ],
)
def test_search_errors(client: TestClient, params: dict[str, Any], status: int, kind: str) -> None:
    answer = client.get("/v1/search", params=params)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == kind


def test_upload_errors(settings: Settings, store: Store) -> None:
    small = settings.model_copy(update={"max_upload_mb": 1})
    with TestClient(create_app(small, store=store)) as client:
        too_big = _match(client, b"x" * (1024 * 1024 + 1), "big.bin")
        assert too_big.status_code == 413 and too_big.json()["error"] == "too-large"
        empty = _match(client, b"", "empty.txt")
        assert empty.status_code == 400 and "empty" in empty.json()["message"]
        fake = _match(client, bytes(range(256)) * 8, "photo.jpg")
        assert fake.status_code in (400, 415), fake.text
        assert "Traceback" not in fake.text
        missing_name = client.post("/v1/match", content=b"abc")
        assert missing_name.status_code == 422
