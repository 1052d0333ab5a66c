"""Resolving through HTTP: every identifier kind, the gateway redirect, every error path."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.api import health as health_routes
from registry.chain.iscc_id import IsccId
from registry.store.store import Store

pytestmark = pytest.mark.chain


def _ids(body: dict[str, Any]) -> list[str]:
    return [r["iscc_id"] for r in body["records"]]


def test_resolve_by_each_kind(client: TestClient, declared: dict[str, Any]) -> None:
    poem = declared["items"]["poem"]
    by_code = client.get("/v1/resolve", params={"q": poem.iscc})
    assert by_code.status_code == 200, by_code.text
    body = by_code.json()
    assert body["kind"] == "iscc-code"
    assert [r["declarer"] for r in body["records"]] == [declared["alice"].address]
    iscc_id = body["records"][0]["iscc_id"]
    IsccId.parse(iscc_id)

    by_id = client.get("/v1/resolve", params={"q": iscc_id}).json()
    assert by_id["kind"] == "iscc-id" and _ids(by_id) == [iscc_id]

    by_hash = client.get("/v1/resolve", params={"q": poem.datahash}).json()
    assert by_hash["kind"] == "datahash" and _ids(by_hash) == [iscc_id]

    by_alice = client.get("/v1/resolve", params={"q": declared["alice"].address.lower()}).json()
    assert by_alice["kind"] == "declarer" and len(by_alice["records"]) == 2
    assert by_alice["records"][0]["iscc_id"] == iscc_id  # chain order

    by_bob = client.get("/v1/resolve", params={"q": declared["bob"].address}).json()
    assert by_bob["records"][0]["iscc_code"] == declared["items"]["song"].iscc


def test_resolve_answers_at_most_limit_records(
    client: TestClient, declared: dict[str, Any]
) -> None:
    alice = declared["alice"].address
    both = client.get("/v1/resolve", params={"q": alice}).json()
    assert len(both["records"]) == 2 and both["truncated"] is False
    first = client.get("/v1/resolve", params={"q": alice, "limit": 1}).json()
    assert first["truncated"] is True and _ids(first) == _ids(both)[:1]
    exact = client.get("/v1/resolve", params={"q": alice, "limit": 2}).json()
    assert exact["truncated"] is False and _ids(exact) == _ids(both)
    for bad in (0, 1001, "x"):
        answer = client.get("/v1/resolve", params={"q": alice, "limit": bad})
        assert answer.status_code == 422, answer.text


def test_iscc_id_json_and_gateway_redirect(client: TestClient, declared: dict[str, Any]) -> None:
    alice = client.get("/v1/resolve", params={"q": declared["alice"].address}).json()
    poem_id, essay_id = _ids(alice)

    as_json = client.get(f"/iscc-id/{poem_id}")
    assert as_json.status_code == 200 and _ids(as_json.json()) == [poem_id]

    html = {"accept": "text/html,application/xhtml+xml"}
    redirect = client.get(f"/iscc-id/{poem_id}", headers=html, follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"https://example.com/{poem_id}"

    # A gateway that is not http(s) is never turned into a redirect.
    unsafe = client.get(f"/iscc-id/{essay_id}", headers=html, follow_redirects=False)
    assert unsafe.status_code == 200 and _ids(unsafe.json()) == [essay_id]


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        ("/v1/resolve?q=ISCC:NOT-A-CODE", 400, "invalid-code"),
        ("/v1/resolve?q=0x1234", 400, "invalid-code"),
        ("/v1/resolve", 422, "invalid-request"),
        ("/v1/resolve?q=" + "A" * 600, 422, "invalid-request"),
        ("/iscc-id/ISCC:MAIGBISBQHSAAAAA", 404, "not-found"),
        ("/nowhere", 404, "not-found"),
    ],
)
def test_errors_are_json(
    client: TestClient, declared: dict[str, Any], path: str, status: int, kind: str
) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == kind and body["message"]


def test_unknown_but_wellformed_identifiers_are_404(
    client: TestClient, declared: dict[str, Any]
) -> None:
    song = declared["items"]["song"]
    unknown = "0x" + "12" * 32
    assert client.get("/v1/resolve", params={"q": unknown}).status_code == 404
    assert client.get("/v1/resolve", params={"q": "0x" + "cd" * 20}).status_code == 404
    # An ISCC-CODE is not an ISCC-ID: the ISCC-ID route says so instead of guessing.
    wrong = client.get(f"/iscc-id/{song.iscc}")
    assert wrong.status_code == 404 and "not an ISCC-ID" in wrong.json()["message"]


def _health_settled(client: TestClient) -> dict[str, Any]:
    """/health once its checks (each second; the node's head is cached 2 s) have seen the
    declarations the fixtures made after the service started."""
    deadline = time.monotonic() + 10
    while True:
        health = client.get("/health").json()
        indexer = health.get("indexer") or {}
        settled = indexer.get("indexed_block") == indexer.get("head_block") is not None
        if (health.get("declarations") == 3 and settled) or time.monotonic() > deadline:
            return health
        time.sleep(0.1)


def test_health_and_metrics(client: TestClient, declared: dict[str, Any]) -> None:
    health = _health_settled(client)
    assert health["status"] == "ok", health
    assert health["declarations"] == 3
    indexer = health["indexer"]
    assert indexer["lag_blocks"] == 0 and indexer["indexed_block"] == indexer["head_block"]
    assert indexer["lookups_deferred"] is False
    # Served under /v1 too, like every other endpoint.
    under_v1 = client.get("/v1/health")
    assert under_v1.status_code == 200 and under_v1.json()["declarations"] == 3

    client.get("/v1/resolve", params={"q": "ISCC:NOT-A-CODE"})
    text = client.get("/metrics").text
    assert "iscc_registry_declarations 3.0" in text
    assert 'route="/v1/resolve",status="400"' in text
    assert "iscc_registry_indexer_lag_blocks 0.0" in text


def test_openapi_describes_every_route(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/v1/resolve", "/iscc-id/{iscc_id}", "/health", "/metrics"} <= paths
    assert "400" in schema["paths"]["/v1/resolve"]["get"]["responses"]


def test_health_tells_when_lookups_run_without_their_indexes(
    client: TestClient, declared: dict[str, Any], store: Store
) -> None:
    song = declared["items"]["song"]
    before = client.get("/v1/resolve", params={"q": song.iscc}).json()
    records = store.by_iscc_code(song.iscc)
    store.defer_lookups()  # as an indexer catching up on a large backlog does
    # /health answers from the last check, at most a second old: check now.
    client.app.state.health.check()  # type: ignore[attr-defined]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["indexer"]["lookups_deferred"] is True
    assert client.get("/v1/resolve", params={"q": song.iscc}).json() == before
    assert store.by_iscc_code(song.iscc) == records != []
    store.restore_lookups()
    client.app.state.health.check()  # type: ignore[attr-defined]
    assert client.get("/health").json()["indexer"]["lookups_deferred"] is False


def _health_until(client: TestClient, wanted: str, seconds: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        answer = client.get("/health")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if any(wanted in problem for problem in body["problems"]) or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_a_hanging_chain_node_degrades_health_without_hiding_the_store(
    client: TestClient, declared: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attacker review: a node that hangs held the health check for its 30 s RPC timeout,
    so /health said 503 "has not answered" after 10 s although the store answered. The node
    is asked by a thread of its own; the answer stays 200 with the node as its problem."""
    monkeypatch.setattr(health_routes, "HEALTH_STALE_S", 3.0)
    monkeypatch.setattr(health_routes, "NODE_STALE_S", 0.3)
    state = client.app.state.registry  # type: ignore[attr-defined]
    release = threading.Event()
    head = state.chain_head

    def hanging() -> tuple[int | None, str | None]:
        release.wait(30)
        return head()

    try:
        assert client.get("/health").json()["status"] == "ok"
        monkeypatch.setattr(state, "chain_head", hanging)
        body = _health_until(client, "chain node has not answered")
        assert body["status"] == "degraded"
        assert body["declarations"] == 3 and body["indexer"]["head_block"] is None
    finally:
        release.set()


def test_an_index_that_stopped_following_degrades_health(
    client: TestClient, declared: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attacker review: with the indexer in a process of its own (`serve --no-index`), a dead
    indexer left /health `ok` however far the chain moved on."""
    state = client.app.state.registry  # type: ignore[attr-defined]
    done = state.store.checkpoint(state.deployment.chain_id, state.contract)
    assert client.get("/health").json()["status"] == "ok"
    monkeypatch.setattr(state, "chain_head", lambda: (done + 10_000, None))
    body = _health_until(client, "is the indexer running?")
    assert body["status"] == "degraded" and body["indexer"]["lag_blocks"] == 10_000
