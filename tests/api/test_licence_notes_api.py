"""Signed notes through the API, on SQLite and PostgreSQL: usage reports (matched to the work,
licensed or not, replay refused) and case responses (each transition, parties only, replay
refused), with the service's limits: attempts counted per client before the signature is
checked, a signer's allowance only after it verified."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ledger_data
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from ledger_data import CHAIN, CONTRACT, GRANTOR, KEYS, LICENCES, RIVAL, Ledger

from registry.api import create_app
from registry.chain.deployment import Deployment
from registry.config import Settings
from registry.ledger import notes
from registry.ledger.notes import CaseResponse, NotesDomain, UsageReport
from registry.ledger.terms import Use
from registry.store.store import Store

DOMAIN = NotesDomain(CHAIN, LICENCES)
NOW = int(time.time())


@pytest.fixture
def ledger_store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as store:
        yield store


def _settings(tmp_path: Path, licences: str = LICENCES, **values: Any) -> Settings:
    home = tmp_path / "home"
    Deployment(CHAIN, CONTRACT, 0, "http://127.0.0.1:1", 0, 0, licences=licences).save(
        home / "deployment.json"
    )
    return Settings(home=home, **values)


@pytest.fixture(autouse=True)
def keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These services have no node: every signer is a key (the wallet check on a devnet is in
    tests/api/test_relay_licences.py)."""
    import types

    from registry.api import ledger as api_ledger
    from registry.api.state import AppState

    monkeypatch.setattr(AppState, "registry", lambda self: types.SimpleNamespace(w3=None))
    monkeypatch.setattr(api_ledger, "wallet_accepts", lambda *_args: None)


@pytest.fixture
def api(tmp_path: Path, ledger_store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path), store=ledger_store)) as client:
        yield client


def usage_note(
    reporter: LocalAccount,
    item: dict[str, Any],
    nonce: int,
    territory: str = "DE",
    use: str = "svod",
    signer: LocalAccount | None = None,
    domain: NotesDomain = DOMAIN,
) -> dict[str, Any]:
    report = UsageReport.create(
        reporter.address, item["iscc"], item["datahash"], territory, use, NOW - 60, nonce
    )
    return notes.sign(report, domain, signer or reporter).to_json()


def response_note(
    party: LocalAccount, case_id: str, action: str, note: str = "", signer: Any = None
) -> dict[str, Any]:
    response = CaseResponse.create(party.address, case_id, action, note, NOW)
    return notes.sign(response, DOMAIN, signer or party).to_json()


@pytest.fixture
def work(ledger_store: Store) -> tuple[str, dict[str, Any]]:
    return ledger_data.declare_work(ledger_store, b"a film, declared " * 80, GRANTOR)


def test_a_use_no_grant_covers_is_reported_unlicensed_then_licensed(
    api: TestClient, ledger_store: Store, work: tuple[str, dict[str, Any]]
) -> None:
    iscc_id, item = work
    platform = Account.create()
    answer = api.post("/v1/usage", json=usage_note(platform, item, 1))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["work"], body["match"], body["licensed"]) == (
        iscc_id,
        {"by": "datahash"},
        False,
    )
    assert body["report"]["reporter"] == platform.address
    assert body["report"]["territory"] == "DE" and body["report"]["use"] == int(Use.SVOD)
    # The owner grants a public SVOD licence in DE (and AT): the same use is licensed now.
    grant = ledger_data.granted(GRANTOR, 7, work=iscc_id, start=NOW - 3600, end=0, block=2)
    ledger_data.store_events(ledger_store, grant)
    licensed = api.post("/v1/usage", json=usage_note(platform, item, 2)).json()
    assert licensed["licensed"] is True and licensed["covering_grants"] == [grant.grant_id]
    # ... but not in France.
    abroad = api.post("/v1/usage", json=usage_note(platform, item, 3, territory="FR")).json()
    assert abroad["licensed"] is False and abroad["grants_considered"] == [grant.grant_id]
    (miss,) = abroad["misses"]
    assert miss["grant"]["grant_id"] == grant.grant_id and miss["reasons"]


def test_a_file_nobody_declared_matches_no_work(api: TestClient) -> None:
    item = ledger_data.content(b"never declared " * 50)
    body = api.post("/v1/usage", json=usage_note(Account.create(), item, 1)).json()
    assert (body["work"], body["licensed"]) == (None, None)


def test_a_usage_report_is_taken_once(api: TestClient, work: tuple[str, dict[str, Any]]) -> None:
    note = usage_note(Account.create(), work[1], 5)
    assert api.post("/v1/usage", json=note).status_code == 201
    again = api.post("/v1/usage", json=note)
    assert again.status_code == 409 and again.json()["error"] == "replayed"


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        (lambda n: n["note"].update(territory="XX"), 400, "unknown territory"),
        (lambda n: n["note"].update(uses=["telepathy"]), 400, "unknown use"),
        (lambda n: n["note"].update(used_at=12345), 400, "signature is by"),
        (lambda n: n.update(signature="0x" + "00" * 65), 400, "signature"),
        (lambda n: n["domain"].update(chainId=1), 400, "signed for chain 1"),
        (lambda n: n.update(type="CaseResponse"), 422, ""),
        (lambda n: n["note"].pop("nonce"), 422, "nonce"),
        (lambda n: n["note"].update(iscc_code="not an iscc"), 422, "iscc_code"),
        (lambda n: n["note"].update(reporter="0x1234"), 422, "reporter"),
    ],
)
def test_bad_usage_reports_are_refused_and_nothing_is_stored(
    api: TestClient,
    ledger_store: Store,
    work: tuple[str, dict[str, Any]],
    change: Any,
    status: int,
    words: str,
) -> None:
    note = usage_note(Account.create(), work[1], 1)
    change(note)
    answer = api.post("/v1/usage", json=note)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["message"]
    assert ledger_store.usage_reports_of(iscc_id=work[0]) == []


def test_a_report_signed_by_someone_else_is_refused(
    api: TestClient, work: tuple[str, dict[str, Any]]
) -> None:
    named, actual = Account.create(), Account.create()
    answer = api.post("/v1/usage", json=usage_note(named, work[1], 1, signer=actual))
    assert answer.status_code == 400
    assert f"by {actual.address}, not by {named.address}" in answer.json()["message"]


def test_without_a_licence_ledger_the_service_takes_no_notes(
    tmp_path: Path, ledger_store: Store, work: tuple[str, dict[str, Any]]
) -> None:
    with TestClient(create_app(_settings(tmp_path, licences=""), store=ledger_store)) as client:
        answer = client.post("/v1/usage", json=usage_note(Account.create(), work[1], 1))
    assert answer.status_code == 503 and "no licence ledger" in answer.json()["message"]


def test_forged_notes_cost_their_sender_not_the_party_they_name(
    tmp_path: Path, ledger_store: Store, work: tuple[str, dict[str, Any]]
) -> None:
    """A signer's allowance is charged only after its signature verified: forgeries naming
    the platform do not spend it; every attempt counts against the sending client."""
    platform, forger = Account.create(), Account.create()
    settings = _settings(tmp_path, notes_per_signer_per_min=1, notes_per_client_per_min=5)
    with TestClient(create_app(settings, store=ledger_store)) as client:
        forged = [
            client.post("/v1/usage", json=usage_note(platform, work[1], n, signer=forger))
            for n in (1, 2)
        ]
        assert [f.status_code for f in forged] == [400, 400]
        genuine = client.post("/v1/usage", json=usage_note(platform, work[1], 3))
        assert genuine.status_code == 201
        second = client.post("/v1/usage", json=usage_note(platform, work[1], 4))
        assert second.status_code == 429 and "by " + platform.address in second.json()["message"]
        assert int(second.headers["Retry-After"]) >= 1
        # The client's own attempts: five a minute; the sixth is refused before anything else.
        fifth = client.post("/v1/usage", json=usage_note(Account.create(), work[1], 5))
        assert fifth.status_code == 201
        sixth = client.post("/v1/usage", json=usage_note(Account.create(), work[1], 6))
        assert sixth.status_code == 429 and "this client" in sixth.json()["message"]


@pytest.fixture
def clash(ledger_store: Store) -> Ledger:
    return ledger_data.exclusive_clash(ledger_store)


def test_parties_answer_a_case_step_by_step(api: TestClient, clash: Ledger) -> None:
    path = f"/v1/cases/{clash.case_id}/responses"
    disputed = api.post(path, json=response_note(KEYS["rival"], clash.case_id, "dispute", "mine"))
    assert disputed.status_code == 200, disputed.text
    case = disputed.json()
    assert case["state"] == "disputed"
    step = case["events"][-1]
    assert (step["actor"], step["action"], step["note"]) == (RIVAL, "dispute", "mine")
    assert step["signature"] and step["digest"]
    # Settled only when every party signs it: the grantor and the rival alone leave it open.
    for party in ("grantor", "rival"):
        waiting = api.post(path, json=response_note(KEYS[party], clash.case_id, "resolve"))
        assert waiting.json()["state"] == "disputed", waiting.text
    resolved = api.post(
        path, json=response_note(KEYS["licensee"], clash.case_id, "resolve", "settled")
    )
    assert resolved.json()["state"] == "resolved"
    assert resolved.json()["closed_reason"] == "settled"
    late = api.post(path, json=response_note(KEYS["licensee"], clash.case_id, "acknowledge"))
    assert late.status_code == 409 and late.json()["error"] == "illegal-transition"
    assert [e["state"] for e in api.get(f"/v1/cases/{clash.case_id}").json()["events"]] == [
        "open",
        "disputed",
        "disputed",
        "disputed",
        "resolved",
    ]


def test_a_response_is_taken_once(api: TestClient, clash: Ledger) -> None:
    path = f"/v1/cases/{clash.case_id}/responses"
    note = response_note(KEYS["licensee"], clash.case_id, "acknowledge")
    assert api.post(path, json=note).json()["state"] == "acknowledged"
    again = api.post(path, json=note)
    assert again.status_code == 409 and again.json()["error"] == "replayed"


def test_only_parties_answer_and_only_the_case_they_signed_for(
    api: TestClient, clash: Ledger
) -> None:
    path = f"/v1/cases/{clash.case_id}/responses"
    outsider = api.post(path, json=response_note(KEYS["stranger"], clash.case_id, "withdraw"))
    assert outsider.status_code == 403 and outsider.json()["error"] == "not-a-party"
    forged = api.post(
        path,
        json=response_note(KEYS["grantor"], clash.case_id, "withdraw", signer=KEYS["stranger"]),
    )
    assert forged.status_code == 400 and forged.json()["error"] == "invalid-note"
    other = "0x" + "ab" * 32
    elsewhere = api.post(
        f"/v1/cases/{other}/responses",
        json=response_note(KEYS["grantor"], clash.case_id, "withdraw"),
    )
    assert elsewhere.status_code == 400 and "signed for case" in elsewhere.json()["message"]
    unknown = api.post(
        f"/v1/cases/{other}/responses", json=response_note(KEYS["grantor"], other, "withdraw")
    )
    assert unknown.status_code == 404
    assert api.get(f"/v1/cases/{clash.case_id}").json()["state"] == "open"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda n: n["note"].update(action="shrug"), 422),
        (lambda n: n["note"].update(note="x" * 5000), 422),
        (lambda n: n["note"].update(case_id="0x12"), 422),
        (lambda n: n.update(type="UsageReport"), 422),
        (lambda n: n["domain"].update(name="Other"), 422),
    ],
)
def test_bad_responses_are_refused(
    api: TestClient, clash: Ledger, change: Any, status: int
) -> None:
    note = response_note(KEYS["rival"], clash.case_id, "dispute")
    change(note)
    answer = api.post(f"/v1/cases/{clash.case_id}/responses", json=note)
    assert answer.status_code == status
    assert api.get(f"/v1/cases/{clash.case_id}").json()["state"] == "open"


# --- review (branch rev): smart-wallet signatures asked of the node ------------------------------


def _fake_node(monkeypatch: pytest.MonkeyPatch, answer: Any) -> list[str]:
    """The service's node as a wallet that answers `answer` (or raises it), counting the
    questions."""
    import types

    from registry.api import ledger as api_ledger
    from registry.api.state import AppState

    asked: list[str] = []

    def accepts(w3: Any, account: str, digest: bytes, signature: bytes, *_caller: Any) -> Any:
        asked.append(account)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(AppState, "registry", lambda self: types.SimpleNamespace(w3=None))
    monkeypatch.setattr(api_ledger, "wallet_accepts", accepts)
    return asked


def test_review_a_wallet_signed_note_asks_the_wallet_once(
    api: TestClient, work: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """report_usage verifies the note (asking the wallet: get_code and an eth_call), then
    take_usage_report -> licence_conflicts.report_usage verifies it again with the same
    wallet check: every smart-wallet note (and every forged note naming a wallet) costs the
    node twice, and the second answer is taken after the signer was charged."""
    asked = _fake_node(monkeypatch, True)
    wallet, owner = Account.create(), Account.create()
    answer = api.post("/v1/usage", json=usage_note(wallet, work[1], 1, signer=owner))
    assert answer.status_code == 201, answer.text
    assert asked == [wallet.address]


def test_review_a_node_that_is_down_is_a_503_not_an_invalid_note(
    api: TestClient, work: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """_wallet turns a node failure into ChainUnavailable ("not the client's fault"), but
    SignedNote.verify catches it as a RegistryError and raises InvalidNote: a smart wallet's
    valid note is refused as a 400 invalid-note instead of a 503 the client would retry."""
    from registry.errors import ChainUnavailable

    _fake_node(monkeypatch, ChainUnavailable("the node did not answer (ConnectionError)"))
    wallet, owner = Account.create(), Account.create()
    answer = api.post("/v1/usage", json=usage_note(wallet, work[1], 1, signer=owner))
    assert answer.status_code == 503, answer.text


def test_a_hanging_node_holds_few_shared_threads_for_wallet_notes(
    api: TestClient, work: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Own review: a smart wallet's signature check runs in the note route's thread of the
    shared pool (40 threads, every sync route's). With a node that hangs, each wallet-signed
    note held one for the node's whole timeout, and a few clients posting such notes held
    every thread: searches, pages and cases waited behind them. At most WALLET_NODE_WAITS
    such checks wait on the node; a note that finds no free slot is refused at once (503)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from registry.api import ledger as api_ledger
    from registry.api.chain_threads import WALLET_NODE_WAITS

    release = threading.Event()
    asked: list[str] = []

    def hanging(w3: Any, account: str, *_rest: Any) -> bool:
        asked.append(account)
        release.wait(30)
        return True

    _fake_node(monkeypatch, True)
    monkeypatch.setattr(api_ledger, "wallet_accepts", hanging)
    owner = Account.create()
    posted = WALLET_NODE_WAITS + 2
    wallet_notes = [usage_note(Account.create(), work[1], 1, signer=owner) for _ in range(posted)]
    with ThreadPoolExecutor(posted) as pool:
        try:
            held = [pool.submit(api.post, "/v1/usage", json=note) for note in wallet_notes]
            deadline = time.monotonic() + 10
            while len(asked) < WALLET_NODE_WAITS or sum(f.done() for f in held) < 2:
                assert time.monotonic() < deadline, (len(asked), [f.done() for f in held])
                time.sleep(0.02)
            refused = [f.result() for f in held if f.done()]
            assert [a.status_code for a in refused] == [503, 503]
            assert {a.json()["error"] for a in refused} == {"overloaded"}
            assert len(asked) == WALLET_NODE_WAITS
            # A page that would ask the node for block times answers without them.
            assert api.get(f"/declaration/{work[0]}").status_code == 200
        finally:
            release.set()
    assert sorted(f.result().status_code for f in held) == [201] * WALLET_NODE_WAITS + [503] * 2
