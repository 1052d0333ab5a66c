"""`iscc-registry revoke | update | transfer` as a user runs them, relayed and --direct."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import assert_clean_error, run

from registry.chain.deployment import Deployment
from registry.chain.iscc_id import IsccId

pytestmark = pytest.mark.chain


def _json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_update_transfer_revoke_relayed_and_direct(
    home: Path, deployment: Deployment, tmp_path: Path
) -> None:
    deployment.save(home / "deployment.json")
    alice = _json(run(home, "keys", "new", "alice", "--json"))["address"]
    bob = _json(run(home, "keys", "new", "bob", "--json"))["address"]
    funded = run(home, "devnet", "fund", "alice", "--ether", "1")
    assert funded.returncode == 0 and "1 devnet ether" in funded.stdout, funded.stderr
    work = tmp_path / "work.txt"
    work.write_text("A work whose declaration changes hands.\n" * 30)
    declared = _json(run(home, "declare", str(work), "--key", "alice", "--json"))
    iscc_id = declared["iscc_id"]
    assert declared["record"] == 0

    metahash = "1e20" + "ab" * 32
    updated = _json(
        run(
            home,
            "update",
            iscc_id,
            "--key",
            "alice",
            "--gateway",
            "https://new.example",
            "--metahash",
            metahash,
            "--json",
        )
    )
    assert (updated["action"], updated["owner"]) == ("updated", alice)
    # What an update does not name stays as it was; an update naming nothing is refused.
    regated = run(home, "update", iscc_id, "--key", "alice", "--gateway", "https://other.example")
    assert regated.returncode == 0, regated.stderr
    assert_clean_error(run(home, "update", iscc_id, "--key", "alice"), "nothing to update")
    moved = _json(
        run(home, "transfer", iscc_id, "--to", bob, "--key", "alice", "--direct", "--json")
    )
    assert (moved["owner"], moved["to"]) == (alice, bob)
    assert_clean_error(
        run(home, "revoke", iscc_id, "--key", "alice"), f"{iscc_id} belongs to {bob} now"
    )
    revoked = run(home, "revoke", iscc_id, "--key", "bob")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout and bob in revoked.stdout
    # Said in words, with the ISCC-ID as users see it (never its integer body).
    again = run(home, "revoke", iscc_id, "--key", "bob")
    assert_clean_error(again, f"{iscc_id} is already revoked")
    assert str(IsccId.parse(iscc_id).body) not in again.stderr
    update = run(home, "update", iscc_id, "--key", "bob", "--gateway", "https://x.example")
    assert_clean_error(update, "already revoked")

    # resolve tells the whole story in text, not only with --json.
    assert run(home, "index").returncode == 0
    shown = run(home, "resolve", iscc_id)
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert f"{iscc_id} revoked" in text
    assert f"transferred from {alice} to {bob}" in text
    assert f"updated by {alice}" in text and f"revoked by {bob}" in text
    history = _json(run(home, "resolve", iscc_id, "--json"))["records"][0]["history"]
    assert [e["event"] for e in history] == [
        "Declared", "Updated", "Updated", "Transferred", "Revoked",
    ]  # fmt: skip
    record = _json(run(home, "resolve", iscc_id, "--json"))["records"][0]
    assert (record["metahash"], record["gateway"]) == (metahash, "https://other.example")


def test_direct_declaration_without_ether_says_how_to_fund(
    home: Path, deployment: Deployment, tmp_path: Path
) -> None:
    deployment.save(home / "deployment.json")
    dave = _json(run(home, "keys", "new", "dave", "--json"))["address"]
    work = tmp_path / "work.txt"
    work.write_text("A work declared by someone without ether.\n" * 30)
    proc = run(home, "declare", str(work), "--key", "dave", "--direct")
    assert_clean_error(proc, f"{dave} has no ether", f"iscc-registry devnet fund {dave}")
    assert run(home, "devnet", "fund", dave).returncode == 0
    assert run(home, "declare", str(work), "--key", "dave", "--direct").returncode == 0


def test_gateway_must_be_a_url_before_anything_is_signed(
    home: Path, deployment: Deployment, tmp_path: Path
) -> None:
    deployment.save(home / "deployment.json")
    assert run(home, "keys", "new", "erin").returncode == 0
    work = tmp_path / "work.txt"
    work.write_text("A work with a gateway.\n" * 30)
    for gateway in ("not a url", "example.org/x", "https://example.org/{broken"):
        proc = run(home, "declare", str(work), "--key", "erin", "--gateway", gateway)
        assert_clean_error(proc, "gateway")
        proc = run(home, "sign", str(work), "--key", "erin", "--gateway", gateway)
        assert_clean_error(proc, "gateway")
    template = run(
        home, "declare", str(work), "--key", "erin", "--gateway", "https://example.org/{iscc_id}"
    )
    assert template.returncode == 0, template.stderr


def test_owner_commands_refuse_bad_input(home: Path, deployment: Deployment) -> None:
    deployment.save(home / "deployment.json")
    assert run(home, "keys", "new", "carol").returncode == 0
    assert_clean_error(run(home, "revoke", "ISCC:NOTANID", "--key", "carol"), "not an ISCC")
    assert_clean_error(
        run(home, "transfer", "ISCC:MAIWFRSBMBTGVHAA", "--to", "0x12", "--key", "carol"),
        "not an address",
    )
    assert_clean_error(
        run(home, "update", "ISCC:MAIWFRSBMBTGVHAA", "--key", "carol", "--metahash", "zz"),
        "not a blake3 hash",
    )
