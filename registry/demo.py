"""The end-to-end demo: a fresh devnet, two declarers, the bundled samples, index and resolve."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from registry.chain.contract import Registry
from registry.chain.devnet import Devnet, dev_account, free_port
from registry.chain.keys import create_key_file
from registry.chain.submit import declare_direct, prepare, submit_signed
from registry.config import PROJECT_ROOT
from registry.errors import InvalidDeclaration
from registry.index.follower import Follower
from registry.index.search import resolve
from registry.index.store import Store
from registry.iscc import generate
from registry.samples import sample_files


def run_demo(console: Console, keep: bool = False) -> None:
    home = Path(tempfile.mkdtemp(prefix="iscc-registry-demo-"))
    devnet = Devnet(home, free_port(), PROJECT_ROOT)
    try:
        _run(console, home, devnet)
    finally:
        if keep:
            console.print(f"\nkept devnet at {devnet.rpc_url} and its files in {home}")
        else:
            devnet.stop()
            shutil.rmtree(home, ignore_errors=True)
            console.print("\ndevnet stopped, demo files removed")


def _step(console: Console, text: str) -> None:
    console.print(f"\n[bold cyan]==>[/bold cyan] [bold]{text}[/bold]")


def _run(console: Console, home: Path, devnet: Devnet) -> None:
    _step(console, "Starting a Hardhat devnet and deploying IsccRegistry")
    deployment = devnet.start()
    registry = Registry.open(deployment)
    console.print(
        f"chain {deployment.chain_id} at {deployment.rpc_url}, registry {deployment.address}, "
        f"realm {deployment.realm}, hub {deployment.hub_id}"
    )

    _step(console, "Creating two declarer keys (they hold no ether)")
    alice = create_key_file(home / "keys" / "alice.key", None)
    bob = create_key_file(home / "keys" / "bob.key", None)
    console.print(f"alice {alice.address}\nbob   {bob.address}")

    _step(console, "Generating ISCC codes of the bundled samples")
    files = sample_files()
    results = {path.name: generate(path) for path in files}
    table = Table("file", "mode", "ISCC-CODE", "datahash")
    for name, r in results.items():
        table.add_row(name, r.mode, r.iscc, r.datahash[:20] + "…")
    console.print(table)

    _step(
        console,
        "Declaring: alice signs two files and a relayer pays the gas; bob declares directly",
    )
    relayer = dev_account(1)
    receipts = {}
    first_signed = None
    names = list(results)
    for name in names[:2]:
        r = results[name]
        signed = prepare(
            registry, alice, r.iscc, r.datahash, r.metahash, f"https://example.org/{name}"
        )
        first_signed = first_signed or signed
        receipts[name] = submit_signed(registry, signed, relayer)
    # A direct declaration is paid by the declarer: give bob some devnet ether first.
    registry.w3.provider.make_request("hardhat_setBalance", [bob.address, hex(10**18)])
    for name in names[2:]:
        r = results[name]
        receipts[name] = declare_direct(registry, bob, r.iscc, r.datahash, r.metahash)
    table = Table("file", "ISCC-ID", "declarer", "how", "tx", "gas")
    for name, receipt in receipts.items():
        who = "alice" if receipt.declarer == alice.address else "bob"
        how = "signed, relayed" if who == "alice" else "direct"
        table.add_row(
            name, str(receipt.iscc_id), who, how, receipt.tx_hash[:18] + "…", str(receipt.gas_used)
        )
    console.print(table)

    _step(console, "Replaying alice's first signature: the registry must refuse it")
    try:
        submit_signed(registry, first_signed, relayer)
        raise AssertionError("the replayed declaration was accepted")
    except InvalidDeclaration as exc:
        console.print(f"[green]refused[/green]: {exc}")

    _step(console, "Indexing the registry's events into SQLite")
    store = Store.open(f"sqlite:///{home / 'registry.db'}")
    follower = Follower(registry, store)
    report = follower.sync()
    console.print(
        f"blocks {report.from_block}-{report.to_block}: {report.events_new} declarations stored"
    )
    again = follower.sync()
    console.print(f"indexing again stores {again.events_new} more (idempotent)")

    _step(
        console, "Resolving each declaration by ISCC-ID, ISCC-CODE and datahash, and each declarer"
    )
    table = Table("query", "kind", "found", "declarer", "ISCC-ID")
    for name, receipt in receipts.items():
        r = results[name]
        for query in (str(receipt.iscc_id), r.iscc, r.datahash):
            res = resolve(store, query)
            for rec in res.records:
                table.add_row(
                    query[:26] + ("…" if len(query) > 26 else ""),
                    res.kind,
                    name,
                    rec.declarer,
                    rec.iscc_id,
                )
            if not res.records:
                table.add_row(query, res.kind, "[red]nothing[/red]", "", "")
    for who, account in (("alice", alice), ("bob", bob)):
        res = resolve(store, account.address)
        table.add_row(
            f"{who} {account.address[:10]}…", res.kind, f"{len(res.records)} declarations", "", ""
        )
    console.print(table)
