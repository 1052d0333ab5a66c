"""The end-to-end demo: a fresh devnet, two declarers, the bundled samples, index and resolve."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from registry.chain.contract import Registry
from registry.chain.devnet import Devnet, dev_account, free_port, fund
from registry.chain.flows import PaidBy, declare_file, submit_declaration
from registry.chain.keys import create_key_file
from registry.config import PROJECT_ROOT
from registry.errors import InvalidDeclaration, RegistryError
from registry.iscc import generate
from registry.ledger.indexer import Indexer
from registry.samples import sample_files
from registry.search.resolve import resolve
from registry.store.store import Store


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
        f"realm {deployment.realm}, hub {deployment.hub_id}",
        soft_wrap=True,
    )

    _step(console, "Creating two declarer keys (they hold no ether)")
    alice = create_key_file(home / "keys" / "alice.key", None)
    bob = create_key_file(home / "keys" / "bob.key", None)
    names_of = {alice.address: "alice", bob.address: "bob"}
    console.print(f"alice {alice.address}\nbob   {bob.address}")

    _step(console, "Generating ISCC codes of the bundled samples")
    sample_paths = {path.name: path for path in sample_files()}
    results = {name: generate(path) for name, path in sample_paths.items()}
    for name, r in results.items():
        console.print(f"[bold]{name}[/bold] ({r.mode}, {r.filesize:,} bytes)", highlight=False)
        console.print(f"  ISCC-CODE {r.iscc}\n  datahash  {r.datahash}", soft_wrap=True)

    _step(
        console, "Declaring: alice signs two files, a relayer pays their gas; bob declares himself"
    )
    relayer = PaidBy(registry, dev_account(1))
    receipts = {}
    signed = []
    names = list(results)
    for name in names[:2]:
        declared = declare_file(
            registry,
            alice,
            sample_paths[name],
            gateway=f"https://example.org/{name}",
            submitter=relayer,
            result=results[name],
        )
        assert declared.signed is not None
        signed.append(declared.signed)
        receipts[name] = declared.receipt
    # A direct declaration is paid by the declarer: give bob some devnet ether first.
    fund(registry.w3, bob.address, 10**18)
    for name in names[2:]:
        receipts[name] = declare_file(
            registry, bob, sample_paths[name], result=results[name]
        ).receipt
    table = Table("file", "ISCC-ID", "declarer", "how", "gas", "block")
    table.columns[1].no_wrap = True
    for name, receipt in receipts.items():
        table.add_row(
            name,
            str(receipt.iscc_id),
            names_of[receipt.declarer],
            "relayed" if receipt.declarer == alice.address else "direct",
            f"{receipt.gas_used:,}",
            str(receipt.block_number),
        )
    console.print(table)

    _step(console, "Replaying alice's first signature: the registry must refuse it")
    try:
        submit_declaration(signed[0], relayer)
        raise AssertionError("the replayed declaration was accepted")
    except InvalidDeclaration as exc:
        console.print(f"[green]refused[/green]: {exc}", soft_wrap=True)

    _step(console, "Indexing the registry's events into SQLite")
    store = Store.open(f"sqlite:///{home / 'registry.db'}")
    follower = Indexer(registry, store)
    report = follower.sync()
    console.print(
        f"blocks {report.from_block}-{report.to_block}: {report.events_new} declarations stored"
    )
    again = follower.sync()
    console.print(f"indexing again stores {again.events_new} more (idempotent)")

    _step(console, "Resolving each declaration by ISCC-ID, ISCC-CODE and datahash")
    table = Table("file", "looked up by", "found ISCC-ID", "declarer", "right")
    wrong = 0
    table.columns[2].no_wrap = True
    for name, receipt in receipts.items():
        r = results[name]
        for query in (str(receipt.iscc_id), r.iscc, r.datahash):
            res = resolve(store, query)
            found = [(rec.iscc_id, rec.declarer) for rec in res.records]
            right = found == [(str(receipt.iscc_id), receipt.declarer)]
            wrong += not right
            table.add_row(
                name,
                res.kind,
                ", ".join(i for i, _ in found) or "nothing",
                ", ".join(names_of.get(d, d) for _, d in found),
                "[green]yes[/green]" if right else "[red]NO[/red]",
            )
    console.print(table)
    if wrong:
        raise RegistryError(f"{wrong} lookups did not return what was declared")
    _step(console, "Resolving each declarer")
    for who, account in (("alice", alice), ("bob", bob)):
        ids = [rec.iscc_id for rec in resolve(store, account.address).records]
        console.print(f"{who} {account.address}: {', '.join(ids)}", soft_wrap=True)
