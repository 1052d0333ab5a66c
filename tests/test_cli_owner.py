"""`iscc-registry revoke | update | transfer` as a user runs them, relayed and --direct."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import assert_clean_error, run

from registry.chain.contract import connect
from registry.chain.deployment import Deployment

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
    connect(deployment.rpc_url).provider.make_request("hardhat_setBalance", [alice, hex(10**18)])
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
    moved = _json(
        run(home, "transfer", iscc_id, "--to", bob, "--key", "alice", "--direct", "--json")
    )
    assert (moved["owner"], moved["to"]) == (alice, bob)
    assert_clean_error(run(home, "revoke", iscc_id, "--key", "alice"), "NotOwner")
    revoked = run(home, "revoke", iscc_id, "--key", "bob")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout and bob in revoked.stdout
    assert_clean_error(run(home, "update", iscc_id, "--key", "bob", "--gateway", "x"), "NotOwner")


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
