"""`iscc-registry declare --license --rights`, `license grant` and `license terminate` as a
user runs them on the devnet, and the one-line errors for bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from test_cli import assert_clean_error, run

from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.store.store import Store

pytestmark = pytest.mark.chain


def _json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def declared(home: Path, deployment: Deployment, tmp_path: Path) -> dict:
    """Alice (funded) declared a film with its licence and rights holder; Bob has a key."""
    deployment.save(home / "deployment.json")
    alice = _json(run(home, "keys", "new", "alice", "--json"))["address"]
    bob = _json(run(home, "keys", "new", "bob", "--json"))["address"]
    assert run(home, "devnet", "fund", "alice", "--ether", "1").returncode == 0
    work = tmp_path / "film.txt"
    work.write_text("A film whose rights are licensed by territory.\n" * 30)
    answer = _json(
        run(
            home, "declare", str(work), "--key", "alice", "--json",
            "--license", "https://example.com/licence", "--rights", "(c) 2025 Alice Films",
        )
    )  # fmt: skip
    return {"alice": alice, "bob": bob, "iscc_id": answer["iscc_id"], "tx": answer["tx_hash"]}


def test_declare_records_license_and_rights_in_the_metadata(
    home: Path, deployment: Deployment, declared: dict
) -> None:
    registry = Registry.open(deployment)
    receipt = registry.w3.eth.get_transaction_receipt(declared["tx"])
    (event,) = registry.contract.events.Declared().process_receipt(receipt)
    metahash = bytes(event["args"]["metahash"])
    with Store.open(f"sqlite:///{home / 'registry.db'}") as store:
        document = json.loads(store.get_metadata(metahash) or b"{}")
    assert document["license"] == "https://example.com/licence"
    assert document["rights"] == "(c) 2025 Alice Films"
    assert document["name"]


def test_sign_records_license_and_rights_and_declare_signed_submits_them(
    home: Path, deployment: Deployment, declared: dict, tmp_path: Path
) -> None:
    """Signed now, submitted later: the metadata document is published when signing, and the
    declaration that arrives later commits to it."""
    work = tmp_path / "signed-film.txt"
    work.write_text("A film signed today and declared tomorrow.\n" * 30)
    signed = tmp_path / "signed.json"
    proc = run(
        home, "sign", str(work), "--key", "bob", "-o", str(signed),
        "--license", "https://example.com/bob-licence", "--rights", "(c) 2025 Bob",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    metahash = bytes.fromhex(json.loads(signed.read_text())["declaration"]["metahash"][2:])
    with Store.open(f"sqlite:///{home / 'registry.db'}") as store:
        document = json.loads(store.get_metadata(metahash) or b"{}")
    assert document["license"] == "https://example.com/bob-licence"
    assert document["rights"] == "(c) 2025 Bob"
    answer = _json(run(home, "declare", "--signed", str(signed), "--json"))
    assert answer["declarer"] == declared["bob"]
    assert_clean_error(
        run(home, "sign", str(work), "--key", "bob", "--license", "ftp://x"), "http(s) URL"
    )


def test_grant_a_sublicence_and_terminate_end_to_end(
    home: Path, deployment: Deployment, declared: dict, tmp_path: Path
) -> None:
    terms_file = tmp_path / "terms.pdf"
    terms_file.write_bytes(b"%PDF licence terms for the film")
    granted = _json(
        run(
            home, "license", "grant", "--work", declared["iscc_id"], "--key", "alice",
            "--to", declared["bob"], "--world", "--except", "US,CA", "--use", "svod,avod",
            "--from", "2025-01-01", "--until", "2026-01-01", "--exclusive", "--sublicensable",
            "--conditions", "commercial,attribution",
            "--terms-url", "https://example.com/terms.pdf", "--terms-file", str(terms_file),
            "--json",
        )
    )  # fmt: skip
    assert granted["grantor"] == declared["alice"] and granted["licensee"] == declared["bob"]
    assert granted["iscc_id"] == declared["iscc_id"]
    terms = granted["terms"]
    assert terms["territories"] == {"worldwide": True, "codes": ["CA", "US"]}
    assert terms["uses"] == ["svod", "avod"] and terms["exclusive"] and terms["sublicensable"]
    assert terms["period"] == {"start": 1_735_689_600, "end": 1_767_225_600}
    assert terms["terms_hash"] == "0x" + hashlib.sha256(terms_file.read_bytes()).hexdigest()

    registry = Registry.open(deployment)
    ledger = registry.licences.functions
    grant_id = bytes.fromhex(granted["grant_id"][2:])
    assert ledger.grantorOf(grant_id).call() == declared["alice"]
    assert ledger.licenseeOf(grant_id).call() == declared["bob"]

    # Bob (no ether) sublicenses Germany publicly, relayed by the devnet's payer.
    sub = run(
        home, "license", "grant", "--work", declared["iscc_id"], "--key", "bob", "--public",
        "--territory", "DE", "--use", "svod", "--from", "2025-03-01",
        "--parent", granted["grant_id"],
    )  # fmt: skip
    assert sub.returncode == 0, sub.stderr
    assert "granted by " + declared["bob"] in sub.stdout and "SVOD in DE" in sub.stdout

    # The licensee gives the licence up; it cannot be terminated twice.
    ended = _json(run(home, "license", "terminate", granted["grant_id"], "--key", "bob", "--json"))
    assert (ended["grant_id"], ended["terminated_by"]) == (granted["grant_id"], declared["bob"])
    assert ledger.isTerminated(grant_id).call()
    assert_clean_error(
        run(home, "license", "terminate", granted["grant_id"], "--key", "alice", "--direct"),
        "AlreadyTerminated",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--to", "0xabc", "--territory", "DE", "--use", "svod"], "not an address"),
        (["--public", "--territory", "DE", "--use", "streaming"], "unknown use 'streaming'"),
        (["--public", "--territory", "DE,XX", "--use", "svod"], "unknown territory 'XX'"),
        (
            [
                "--public",
                "--territory",
                "DE",
                "--use",
                "svod",
                "--from",
                "2026-01-01",
                "--until",
                "2025-01-01",
            ],
            "not after start",
        ),
        (["--public", "--territory", "DE", "--use", "svod", "--from", "yesterday"], "not a date"),
        (["--territory", "DE", "--use", "svod"], "--to ADDRESS, or grant to everyone"),
        (["--public", "--use", "svod"], "--territory DE,AT, or --world"),
        (["--public", "--territory", "DE", "--world", "--use", "svod"], "pick one"),
        (["--public", "--territory", "DE", "--except", "US", "--use", "svod"], "with --world"),
        (["--public", "--world", "--use", "svod", "--parent", "0x12"], "parent"),
        (["--public", "--world", "--use", "svod", "--terms-file", "/nonexistent"], "not found"),
        (["--public", "--world", "--use", "svod", "--direct", "--via", "http://x"], "pick one"),
    ],
)
def test_grant_refuses_bad_input_in_one_line(
    home: Path, declared: dict, options: list[str], message: str
) -> None:
    proc = run(home, "license", "grant", "--work", declared["iscc_id"], "--key", "alice", *options)
    assert_clean_error(proc, message)


def test_terminate_and_declare_refuse_bad_input_in_one_line(
    home: Path, declared: dict, tmp_path: Path
) -> None:
    assert_clean_error(run(home, "license", "terminate", "0x12", "--key", "alice"), "grant id")
    # Bob is neither grantor nor licensee of a grant that does not exist.
    missing = "0x" + "ab" * 32
    assert_clean_error(
        run(home, "license", "terminate", missing, "--key", "alice", "--direct"), "UnknownGrant"
    )
    work = tmp_path / "other.txt"
    work.write_text("another work\n" * 40)
    assert_clean_error(
        run(home, "declare", str(work), "--key", "alice", "--license", "not a url"),
        "--license must be an http(s) URL",
    )
    assert_clean_error(
        run(home, "declare", str(work), "--key", "alice", "--rights", "  "), "--rights is empty"
    )
    assert_clean_error(
        run(
            home,
            "license",
            "grant",
            "--work",
            "ISCC:NOPE",
            "--key",
            "alice",
            "--public",
            "--world",
            "--use",
            "svod",
        ),
        "--work is not an ISCC-ID",
    )
