"""Relaying licence grants and terminations through HTTP: granted without gas, idempotent
retries, signatures checked before anyone's budget is charged, every refusal a clear 4xx."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from index_helpers import content
from mocks import deploy_mock, mock_contract

from registry.api import create_app
from registry.chain.contract import Registry
from registry.chain.devnet import dev_account
from registry.chain.licences import (
    ZERO_ADDRESS,
    ZERO_HASH,
    LicenceDomain,
    SignedGrant,
    licence_domain,
    prepare_grant,
    prepare_termination,
    sign_grant,
)
from registry.config import Settings
from registry.ledger import notes
from registry.ledger.notes import NotesDomain, UsageReport
from registry.store.store import Store

pytestmark = pytest.mark.chain

ISCC_ID = (1_700_000_000_000_000 << 12) | 0
BURN_GAS, REVERT, REJECT = 1, 2, 4


def terms(**changes: Any) -> dict[str, Any]:
    return {
        "licensee": ZERO_ADDRESS,
        "parent": ZERO_HASH,
        "territories": b"ATDE",
        "worldwide": False,
        "uses": 1 << 3,
        "conditions": 0,
        "start": 1_735_689_600,
        "end": 0,
        "exclusive": False,
        "sublicensable": True,
        "termsUrl": "https://example.com/terms",
        "termsHash": ZERO_HASH,
    } | changes


def _grant(client: TestClient, signed: SignedGrant, **params: Any) -> Any:
    return client.post("/v1/relay/grants", json=signed.to_json(), params=params)


def test_grant_and_termination_are_relayed_without_gas(
    client: TestClient, registry: Registry
) -> None:
    grantor, licensee = Account.create(), Account.create()  # neither holds any ether
    signed = prepare_grant(registry, grantor, ISCC_ID, terms(licensee=licensee.address))
    answer = _grant(client, signed)
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert job["state"] == "done" and job["kind"] == "grant"
    assert job["submitter"] == grantor.address
    assert job["result"]["grant_id"] == signed.request.grant_id
    assert job["result"]["licensee"] == licensee.address
    again = _grant(client, signed)  # a retry: the same job, nothing sent twice
    assert again.status_code == 200 and again.json() == job

    ended = prepare_termination(registry, licensee, signed.request.grant_id)
    answer = client.post("/v1/relay/terminations", json=ended.to_json())
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["terminated_by"] == licensee.address
    # Another termination of the same grant, newly signed by its grantor: refused for good.
    late = prepare_termination(registry, grantor, signed.request.grant_id)
    answer = client.post("/v1/relay/terminations", json=late.to_json())
    assert answer.status_code == 409 and answer.json()["error"] == "grant-conflict"
    assert registry.w3.eth.get_balance(grantor.address) == 0


def test_a_sublicence_may_follow_its_queued_parent(client: TestClient, registry: Registry) -> None:
    owner, distributor = Account.create(), Account.create()
    parent = prepare_grant(registry, owner, ISCC_ID, terms(licensee=distributor.address))
    child_terms = terms(parent=bytes.fromhex(parent.request.grant_id[2:]), territories=b"AT")
    child = prepare_grant(registry, distributor, ISCC_ID, child_terms)
    orphan_terms = terms(parent=b"\x77" * 32)
    orphan = prepare_grant(registry, distributor, ISCC_ID, orphan_terms)
    answer = _grant(client, orphan)
    assert answer.status_code == 400 and "parent grant" in answer.json()["message"]
    first = _grant(client, parent, wait=0)
    assert first.status_code in (200, 202), first.text
    second = _grant(client, child)
    assert second.status_code == 200, second.text
    assert second.json()["state"] == "done"
    finished = client.get(f"/v1/relay/jobs/{first.json()['job']}", params={"wait": 30}).json()
    assert finished["state"] == "done"


def test_refusals_are_clear_and_cost_nothing(client: TestClient, registry: Registry) -> None:
    grantor = Account.create()
    signed = prepare_grant(registry, grantor, ISCC_ID, terms())
    body = signed.to_json()

    def post(changed: dict[str, Any]) -> Any:
        return client.post("/v1/relay/grants", json=changed)

    # The schema bounds every field before anything is parsed further.
    too_many = body | {"grant": body["grant"] | {"territories": "AA" * 251}}
    assert post(too_many).status_code == 422
    lower = body | {"grant": body["grant"] | {"territories": "atde"}}
    assert post(lower).status_code == 422
    long_url = body | {"grant": body["grant"] | {"terms_url": "x" * 2049}}
    assert post(long_url).status_code == 422
    no_use = body | {"grant": body["grant"] | {"uses": 0}}
    assert post(no_use).status_code == 422
    other_kind = body | {"domain": body["domain"] | {"name": "IsccRegistry"}}
    assert post(other_kind).status_code == 422
    # What only the model knows: unsorted codes, an end before the start.
    unsorted = body | {"grant": body["grant"] | {"territories": "DEAT"}}
    answer = post(unsorted)
    assert answer.status_code == 400 and "InvalidTerritories" in answer.json()["message"]
    backwards = body | {"grant": body["grant"] | {"end": 1_000}}
    answer = post(backwards)
    assert answer.status_code == 400 and "InvalidPeriod" in answer.json()["message"]
    # Signed for another chain, or by someone else, or too late.
    mine = licence_domain(registry)
    elsewhere = sign_grant(signed.request, LicenceDomain(1, mine.verifying_contract), grantor)
    answer = _grant(client, elsewhere)
    assert answer.status_code == 400 and "chain 1" in answer.json()["message"]
    forged = sign_grant(signed.request, mine, Account.create())
    answer = _grant(client, forged)
    assert answer.status_code == 400 and "not by" in answer.json()["message"]
    expired = prepare_grant(registry, grantor, ISCC_ID, terms(), validity_s=-10)
    answer = _grant(client, expired)
    assert answer.status_code == 400 and "deadline" in answer.json()["message"]
    # A spent nonce is a conflict, and a retry of the mined grant is not.
    assert _grant(client, signed).status_code == 200
    replay = sign_grant(dataclasses.replace(signed.request, territories=b"AT"), mine, grantor)
    answer = _grant(client, replay)
    assert answer.status_code == 409 and answer.json()["error"] == "grant-conflict"
    # A termination by a stranger, or of no grant.
    stranger_end = prepare_termination(registry, Account.create(), signed.request.grant_id)
    answer = client.post("/v1/relay/terminations", json=stranger_end.to_json())
    assert answer.status_code == 400 and "neither the grantor" in answer.json()["message"]
    nothing = prepare_termination(registry, grantor, "0x" + "ab" * 32)
    answer = client.post("/v1/relay/terminations", json=nothing.to_json())
    assert answer.status_code == 400 and "no grant" in answer.json()["message"]
    assert registry.w3.eth.get_balance(grantor.address) == 0


@pytest.fixture
def limited(settings: Settings, store: Store) -> Iterator[TestClient]:
    tight = settings.model_copy(update={"relay_per_declarer_per_min": 2})
    with TestClient(create_app(tight, store=store)) as client:
        yield client


def test_forged_grants_do_not_spend_the_grantors_limit(
    limited: TestClient, registry: Registry
) -> None:
    """Anyone may name Bob (or Bob's smart wallet) as grantor; only Bob's own signature (his
    wallet's yes) charges Bob's budget. A wallet's signature is asked of the wallet before
    anything is charged, so a made-up one costs the wallet nothing."""
    bob = Account.create()
    wallet = deploy_mock(registry, "HostileWallet")
    registry.transact(
        mock_contract(registry, "HostileWallet", wallet).functions.setMode(REJECT), dev_account(0)
    )
    for _ in range(4):
        forged = prepare_grant(registry, Account.create(), ISCC_ID, terms())
        body = forged.to_json()
        body["grant"]["grantor"] = bob.address
        answer = limited.post("/v1/relay/grants", json=body)
        assert answer.status_code == 400, answer.text
        at_wallet = prepare_grant(
            registry, Account.create(), ISCC_ID, terms(), grantor_address=wallet
        )
        answer = _grant(limited, at_wallet)
        assert answer.status_code == 400 and "ERC-1271" in answer.json()["message"]
    own = prepare_grant(registry, bob, ISCC_ID, terms())
    answer = _grant(limited, own)
    assert answer.status_code == 200, answer.text
    # Bob's own valid requests are still limited.
    for _ in range(2):
        last = _grant(limited, prepare_grant(registry, bob, ISCC_ID, terms()))
    assert last.status_code == 429


def test_a_smart_wallet_grants_through_the_relay(client: TestClient, registry: Registry) -> None:
    owner = Account.create()
    wallet = deploy_mock(registry, "OwnedWallet", owner.address)
    signed = prepare_grant(registry, owner, ISCC_ID, terms(), grantor_address=wallet)
    answer = _grant(client, signed)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["grantor"] == wallet


def _usage_by(registry: Registry, reporter: str, signer: Any, nonce: int) -> dict[str, Any]:
    item = content(b"a file a platform used " * 40)
    report = UsageReport.create(
        reporter, item["iscc"], item["datahash"], "DE", "svod", int(time.time()) - 60, nonce
    )
    assert registry.deployment.licences is not None
    domain = NotesDomain(registry.deployment.chain_id, registry.deployment.licences)
    return notes.sign(report, domain, signer).to_json()


def test_a_smart_wallet_signs_notes_with_its_owners_key(
    client: TestClient, registry: Registry
) -> None:
    """A signed note names a smart wallet and is signed by its owner's key: the service asks
    the wallet (ERC-1271) and takes it. A key the wallet does not accept, and a wallet that
    reverts or burns its stipend, are a 400 that says so."""
    owner = Account.create()
    wallet = deploy_mock(registry, "OwnedWallet", owner.address)
    answer = client.post("/v1/usage", json=_usage_by(registry, wallet, owner, 1))
    assert answer.status_code == 201, answer.text
    assert answer.json()["report"]["reporter"] == wallet
    refused = client.post("/v1/usage", json=_usage_by(registry, wallet, Account.create(), 2))
    assert refused.status_code == 400
    assert "does not accept the signature (ERC-1271)" in refused.json()["message"]
    hostile = deploy_mock(registry, "HostileWallet")
    for mode in (BURN_GAS, REVERT):
        registry.transact(
            mock_contract(registry, "HostileWallet", hostile).functions.setMode(mode),
            dev_account(0),
        )
        answer = client.post("/v1/usage", json=_usage_by(registry, hostile, owner, 3))
        assert answer.status_code == 400, answer.text
    # A key that signs for another key is still told who signed.
    other = client.post("/v1/usage", json=_usage_by(registry, Account.create().address, owner, 1))
    assert other.status_code == 400 and "signature is by" in other.json()["message"]


def test_the_schema_describes_the_licence_relay(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/v1/relay/grants", "/v1/relay/terminations"):
        post = schema["paths"][path]["post"]
        assert {"200", "202", "409", "429"} <= set(post["responses"])
    grant = schema["components"]["schemas"]["GrantIn"]["properties"]
    assert grant["territories"]["maxLength"] == 500
    assert grant["terms_url"]["maxLength"] == 2048
