"""The end-to-end demo: a fresh devnet, two declarers, the bundled samples, index and resolve;
then the licence ledger: an exclusive licence, an overlapping one, the conflict's case, and the
case resolving itself when the overlapping grant is terminated."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from registry.chain.contract import Registry
from registry.chain.devnet import Devnet, dev_account, free_port, fund
from registry.chain.flows import PaidBy, declare_file, submit_declaration
from registry.chain.keys import create_key_file
from registry.chain.submit import DeclarationReceipt
from registry.config import PROJECT_ROOT
from registry.errors import InvalidDeclaration, RegistryError
from registry.iscc import generate
from registry.ledger.cases import list_cases
from registry.ledger.indexer import Indexer
from registry.ledger.licence_views import work_licences
from registry.ledger.licensing import grant_licence, terminate_licence
from registry.ledger.terms import GrantTerms
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

    _licences(
        console,
        home,
        registry,
        store,
        follower,
        relayer,
        (alice, bob),
        receipts[names[0]],
        names_of,
    )


def _licences(
    console: Console,
    home: Path,
    registry: Registry,
    store: Store,
    follower: Indexer,
    relayer: PaidBy,
    declarers: tuple[LocalAccount, LocalAccount],
    work: DeclarationReceipt,
    names_of: dict[str, str],
) -> None:
    """The licence ledger: an exclusive licence, an overlapping one by someone else, the
    conflict and its case found by the indexer, and the case resolving itself when the
    overlapping grant is terminated."""
    alice, bob = declarers
    carol = create_key_file(home / "keys" / "carol.key", None)
    names_of = {**names_of, carol.address: "carol"}
    today = datetime.now(tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = int(today.timestamp())
    end = int(today.replace(year=today.year + 5).timestamp())

    _step(
        console,
        f"Licensing {work.iscc_id}: alice grants carol an exclusive SVOD licence in Germany "
        "and Austria for five years (signed by alice, relayed)",
    )
    exclusive = grant_licence(
        registry,
        alice,
        work.iscc_id,
        GrantTerms.create(
            territories="DE,AT",
            uses="svod",
            start=start,
            end=end,
            exclusive=True,
            licensee=carol.address,
        ),
        submitter=relayer,
    )
    console.print(
        f"grant {exclusive.receipt.grant_id}: {exclusive.terms.describe()}", soft_wrap=True
    )

    _step(console, "bob, who does not own it, grants everyone SVOD and AVOD worldwide over it")
    public = grant_licence(
        registry,
        bob,
        work.iscc_id,
        GrantTerms.create(territories="world", uses="svod,avod", start=start),
    )
    console.print(f"grant {public.receipt.grant_id}: {public.terms.describe()}", soft_wrap=True)

    _step(console, "Indexing: the indexer finds the licence conflicts and opens their cases")
    follower.sync()
    _licence_table(console, store, str(work.iscc_id), names_of)
    opened = list_cases(store, iscc_id=str(work.iscc_id))
    _case_table(console, opened, names_of)
    if not any(c["kind"] == "exclusive_overlap" and c["state"] == "open" for c in opened):
        raise RegistryError("the exclusive licence's overlap was not found")

    _step(console, "bob terminates his grant: the conflicts it caused resolve by themselves")
    terminate_licence(registry, bob, public.receipt.grant_id)
    follower.sync()
    _licence_table(console, store, str(work.iscc_id), names_of)
    closed = list_cases(store, iscc_id=str(work.iscc_id))
    _case_table(console, closed, names_of)
    for case in closed:
        console.print(f"case {case['id']}: {case['closed_reason']}", soft_wrap=True)
    if any(c["state"] != "resolved" for c in closed):
        raise RegistryError("a case stayed open after the grant that caused it was terminated")


def _licence_table(console: Console, store: Store, work: str, names: dict[str, str]) -> None:
    table = Table("licensee", "territories", "uses", "period", "exclusive", "status")
    for licence in work_licences(store, work):
        who = licence["licensee"]
        kinds = ", ".join(c["kind"] for c in licence["conflicts"])
        table.add_row(
            names.get(who, who) if who else "public",
            licence["where"],
            ", ".join(licence["what"]),
            licence["when"],
            "yes" if licence["exclusive"] else "no",
            licence["status"] + (f"; in conflict: {kinds}" if kinds else ""),
        )
    console.print(table)


def _case_table(console: Console, found: list[dict], names: dict[str, str]) -> None:
    table = Table("case", "kind", "state", "parties")
    table.columns[0].no_wrap = True
    for case in found:
        parties = ", ".join(
            f"{names.get(p['address'], p['address'])} ({p['role']})" for p in case["parties"]
        )
        table.add_row(case["id"][:12] + "…", case["kind"], case["state"], parties)
    console.print(table)
