"""Relaying through HTTP: declare and act without gas, idempotent retries, every refusal."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from registry.api import create_app
from registry.chain.actions import make_action, sign_action, sign_for
from registry.chain.contract import Registry
from registry.chain.declaration import Declaration, sign
from registry.chain.submit import domain_of, prepare
from registry.config import Settings
from registry.iscc.generate import generate
from registry.ledger.indexer import Indexer
from registry.store.store import Store

pytestmark = pytest.mark.chain


@pytest.fixture
def work(tmp_path: Path) -> Any:
    path = tmp_path / "work.txt"
    path.write_text("A short story about relays and the people who pay their gas. " * 10)
    return generate(path)


def _post(client: TestClient, body: dict[str, Any], **params: Any) -> Any:
    return client.post("/v1/relay/declarations", json=body, params=params)


def test_relayed_declaration_is_mined_indexed_and_resolvable(
    client: TestClient, registry: Registry, store: Store, work: Any
) -> None:
    creator = Account.create()  # holds no gas at all
    signed = prepare(registry, creator, work.iscc, work.datahash, work.metahash, "")
    answer = _post(client, signed.to_json())
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert job["state"] == "done" and job["kind"] == "declare"
    assert job["result"]["declarer"] == creator.address
    assert registry.w3.eth.get_balance(creator.address) == 0

    again = _post(client, signed.to_json())  # a retry: same job, nothing sent twice
    assert again.status_code == 200 and again.json() == job
    assert client.get(f"/v1/relay/jobs/{job['job']}").json() == job

    Indexer(registry, store).sync()
    found = client.get("/v1/resolve", params={"q": creator.address}).json()["records"]
    assert [r["iscc_id"] for r in found] == [job["result"]["iscc_id"]]
    assert found[0]["iscc_code"] == work.iscc


def test_concurrent_declarations_share_batches(
    client: TestClient, registry: Registry, work: Any
) -> None:
    creators = [Account.create() for _ in range(6)]
    bodies = [
        prepare(registry, c, work.iscc, work.datahash, None, f"https://example.com/{i}").to_json()
        for i, c in enumerate(creators)
    ]
    answers: list[Any] = [None] * len(bodies)

    def send(i: int) -> None:
        answers[i] = _post(client, bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    jobs = [a.json() for a in answers]
    assert all(j["state"] == "done" for j in jobs), jobs
    assert len({j["result"]["iscc_id"] for j in jobs}) == len(bodies)
    # Sent together within the batch window: fewer transactions than declarations.
    assert len({j["result"]["tx_hash"] for j in jobs}) < len(bodies)


def _tampered(body: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    changed["declaration"]["gateway"] = "https://evil.example"
    return changed


def _other_chain(body: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    changed["domain"]["chainId"] = 1
    return changed


def _garbled(body: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    changed["signature"] = "0x1234"
    return changed


@pytest.mark.parametrize(
    ("mutate", "status", "message"),
    [
        (_tampered, 400, "not by"),
        (_other_chain, 400, "this relay serves chain"),
        (_garbled, 400, "signature"),
        (lambda b: {"declarer": b["declarer"]}, 422, "declaration"),
    ],
)
def test_refused_declarations(
    client: TestClient, registry: Registry, work: Any, mutate: Any, status: int, message: str
) -> None:
    signed = prepare(registry, Account.create(), work.iscc, work.datahash, None, "")
    answer = _post(client, mutate(signed.to_json()))
    assert answer.status_code == status, answer.text
    assert message in answer.json()["message"]


def test_expired_and_used_nonce(client: TestClient, registry: Registry, work: Any) -> None:
    creator = Account.create()
    expired = prepare(registry, creator, work.iscc, work.datahash, None, "", validity_s=-10)
    answer = _post(client, expired.to_json())
    assert answer.status_code == 400 and "deadline" in answer.json()["message"]

    first = prepare(registry, creator, work.iscc, work.datahash, None, "", nonce=5)
    assert _post(client, first.to_json()).json()["state"] == "done"
    reuse = prepare(registry, creator, work.iscc, work.datahash, None, "elsewhere", nonce=5)
    conflict = _post(client, reuse.to_json())
    assert conflict.status_code == 409 and conflict.json()["error"] == "nonce-used"


def test_a_deadline_at_the_latest_blocks_time_is_refused(
    client: TestClient, registry: Registry, work: Any
) -> None:
    """The contract accepts a signature until its block's time passes the deadline; the next
    block's time is after the latest one's, so a deadline equal to it can only fail on chain
    and the relay refuses it up front."""
    creator = Account.create()
    latest = registry.w3.eth.get_block("latest")["timestamp"]
    declaration = Declaration.create(
        creator.address, work.iscc, work.datahash, None, "", nonce=0, deadline=latest
    )
    answer = _post(client, sign(declaration, domain_of(registry), creator).to_json(), wait=0)
    assert answer.status_code == 400, answer.text
    assert f"deadline {latest} has passed" in answer.json()["message"]

    revoke = make_action("revoke", 1 << 12, actions=0, deadline=latest)
    signed = sign_action(revoke, domain_of(registry), creator)
    refused = client.post("/v1/relay/actions", json=signed.to_json(), params={"wait": 0})
    assert refused.status_code == 400, refused.text
    assert f"deadline {latest} has passed" in refused.json()["message"]
    assert registry.w3.eth.get_block("latest")["timestamp"] == latest  # no block in between


def test_rate_limit_per_declarer(
    settings: Settings, store: Store, registry: Registry, work: Any
) -> None:
    limited = settings.model_copy(update={"relay_per_declarer_per_min": 2})
    creator = Account.create()
    with TestClient(create_app(limited, store=store)) as client:
        bodies = [
            prepare(registry, creator, work.iscc, work.datahash, None, "", nonce=n).to_json()
            for n in range(3)
        ]
        assert [_post(client, b, wait=0).status_code for b in bodies[:2]] == [202, 202]
        third = _post(client, bodies[2], wait=0)
        assert third.status_code == 429 and "declarer" in third.json()["message"]
        assert int(third.headers["retry-after"]) >= 1
        # A retry of an accepted request is not a new request.
        assert _post(client, bodies[0], wait=60).json()["state"] == "done"


def test_relayed_owner_action(client: TestClient, registry: Registry, work: Any) -> None:
    creator = Account.create()
    signed = prepare(registry, creator, work.iscc, work.datahash, None, "")
    iscc_id = _post(client, signed.to_json()).json()["result"]["iscc_id"]

    revoke = sign_for(registry, creator, make_action("revoke", _body(iscc_id)))
    answer = client.post("/v1/relay/actions", json=revoke.to_json())
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert job["state"] == "done" and job["result"]["action"] == "revoked"
    assert job["result"]["iscc_id"] == iscc_id

    stranger_signed = sign_for(registry, Account.create(), make_action("revoke", _body(iscc_id)))
    refused = client.post("/v1/relay/actions", json=stranger_signed.to_json())
    assert refused.json()["state"] == "failed", refused.text


def test_stale_owner_action_is_refused_before_sending(
    client: TestClient, registry: Registry, work: Any
) -> None:
    creator = Account.create()
    signed = prepare(registry, creator, work.iscc, work.datahash, None, "")
    iscc_id = _post(client, signed.to_json()).json()["result"]["iscc_id"]
    first = sign_for(registry, creator, make_action("update", _body(iscc_id), gateway="v1"))
    second = sign_for(registry, creator, make_action("update", _body(iscc_id), gateway="v2"))
    assert client.post("/v1/relay/actions", json=second.to_json()).json()["state"] == "done"
    stale = client.post("/v1/relay/actions", json=first.to_json())
    assert stale.status_code == 409 and stale.json()["error"] == "stale-action", stale.text


def test_sealed_declarations_are_not_relayed_here(
    client: TestClient, registry: Registry, work: Any
) -> None:
    sealed = prepare(registry, Account.create(), work.iscc, work.datahash, None, "", sealed=True)
    answer = _post(client, sealed.to_json())
    assert answer.status_code == 400 and "sealed" in answer.json()["message"]


def _body(iscc_id: str) -> int:
    from registry.chain.iscc_id import IsccId

    return IsccId.parse(iscc_id).body


def test_unknown_job_and_no_relay_without_chain(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/v1/relay/jobs/0x00").status_code == 404
    offline = Settings(home=tmp_path / "empty")
    with TestClient(create_app(offline)) as bare:
        answer = bare.post("/v1/relay/declarations", json={})
        assert answer.status_code == 422
        signed_like = {
            "declaration": {
                # Well-formed (the schema's patterns), so the missing chain is what is refused.
                "iscc_code": "ISCC:" + "A" * 16,
                "datahash": "0x" + "00" * 32,
                "metahash": "0x" + "00" * 32,
                "gateway": "",
                "nonce": "0",
                "deadline": 1,
            },
            "declarer": "0x" + "11" * 20,
            "signature": "0x",
            "domain": {
                "name": "IsccRegistry",
                "version": "1",
                "chainId": 1,
                "verifyingContract": "0x" + "22" * 20,
            },
        }
        no_chain = bare.post("/v1/relay/declarations", json=signed_like)
        assert no_chain.status_code == 503 and "deployment" in no_chain.json()["message"]
