"""The `iscc-registry` command line: thin commands over the library, human output or --json."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from registry.config import DEFER_LOOKUPS_AFTER, Settings, get_settings
from registry.errors import ChainUnavailable, InputError, KeyFileError, RegistryError

if TYPE_CHECKING:
    from registry.index.store import Store

app = typer.Typer(
    help="Declare ISCC codes of your content on chain, index the declarations and resolve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="Create and show declarer keys.", no_args_is_help=True)
devnet_app = typer.Typer(
    help="Run a local Hardhat devnet with the registry deployed.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(devnet_app, name="devnet")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
KeyOpt = Annotated[
    str, typer.Option("--key", "-k", help="Key file path, or the name of a key in HOME/keys.")
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        help="File holding the keystore password (else ISCC_REGISTRY_KEY_PASSWORD).",
        readable=False,
    ),
]

DEVNET_CHAIN_ID = 31337


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data))


# --- keys -----------------------------------------------------------------------------------


def _key_path(settings: Settings, key: str) -> Path:
    """A key argument is a path if such a file exists, else a name under HOME/keys."""
    path = Path(key).expanduser()
    if path.exists() or os.sep in key or key.endswith((".json", ".key")):
        return path
    for suffix in (".json", ".key"):
        candidate = settings.home / "keys" / f"{key}{suffix}"
        if candidate.exists():
            return candidate
    raise KeyFileError(f"no key file {key!r} (not a path, and not in {settings.home / 'keys'})")


def _password(password_file: Path | None) -> str | None:
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\n")
        except OSError as exc:
            raise KeyFileError(f"cannot read password file {password_file}: {exc}") from None
    return os.environ.get("ISCC_REGISTRY_KEY_PASSWORD")


def _load_key(settings: Settings, key: str, password_file: Path | None) -> LocalAccount:
    from registry.chain.keys import load_key_file

    return load_key_file(_key_path(settings, key), _password(password_file))


@keys_app.command("new")
def keys_new(
    name: Annotated[
        str, typer.Argument(help="Name of the key; stored as HOME/keys/NAME.json or .key")
    ],
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a new declarer key: an encrypted keystore if a password is given, else plain hex."""
    from registry.chain.keys import create_key_file

    settings = get_settings()
    password = _password(password_file)
    path = settings.home / "keys" / f"{name}{'.json' if password else '.key'}"
    account = create_key_file(path, password)
    if json_out:
        _print_json({"address": account.address, "path": str(path), "encrypted": bool(password)})
        return
    out.print(f"[bold]{account.address}[/bold]  {path}")
    if not password:
        err.print(
            "[yellow]warning:[/yellow] key stored unencrypted: fine on a devnet, not for real value"
        )


@keys_app.command("show")
def keys_show(
    key: Annotated[str, typer.Argument(help="Key file or key name")], json_out: JsonOpt = False
) -> None:
    """Show the address of a key (encrypted keystores show it without the password)."""
    settings = get_settings()
    path = _key_path(settings, key)
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from None
    if text.startswith("{"):
        try:
            address = "0x" + json.loads(text)["address"].removeprefix("0x")
        except (ValueError, KeyError, AttributeError):
            raise KeyFileError(f"{path} is not a V3 keystore") from None
        from eth_utils import to_checksum_address

        address = to_checksum_address(address)
    else:
        address = _load_key(settings, key, None).address
    if json_out:
        _print_json({"address": address, "path": str(path)})
    else:
        out.print(f"[bold]{address}[/bold]  {path}")


# --- generation -----------------------------------------------------------------------------


@app.command()
def gen(
    files: Annotated[
        list[Path],
        typer.Argument(help="Files or directories (searched recursively)", readable=False),
    ],
    json_out: JsonOpt = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Files coded at once (default: cores)")
    ] = None,
) -> None:
    """Generate the ISCC-CODE, units, datahash and metahash of files.

    A failing file is reported on one line and the others go on; the exit code is 1 if any
    failed.
    """
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    from registry.iscc.batch import expand_paths, generate_many

    paths = expand_paths(files)
    if not paths:
        raise InputError("no files found in the given directories")
    results: list[dict[str, Any]] = []
    failures = 0
    columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bars:
        overall = bars.add_task("files", total=len(paths), visible=len(paths) > 1)
        decoding: dict[Path, TaskID] = {}

        def on_progress(path: Path, done: float, total: float | None) -> None:
            if path not in decoding:
                decoding[path] = bars.add_task(path.name, total=total)
            bars.update(decoding[path], completed=done)

        for item in generate_many(paths, jobs, on_progress):
            if item.path in decoding:
                bars.remove_task(decoding.pop(item.path))
            bars.advance(overall)
            if item.result is not None:
                results.append(item.result.to_dict())
            else:
                failures += 1
                bars.console.print(f"[red]error:[/red] {item.error}", highlight=False)
                results.append({"file": str(item.path), "error": item.error})
    if json_out:
        _print_json(results if len(paths) > 1 else results[0])
    else:
        for result in results:
            if "error" not in result:
                _print_iscc(result)
    if failures:
        raise typer.Exit(1)


def _print_iscc(result: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # hashes and codes stay whole on narrow terminals
    table.add_row("[bold]ISCC-CODE[/bold]", f"[bold green]{result['iscc']}[/bold green]")
    for unit in result.get("units", []):
        table.add_row("  unit", unit)
    fields = ("name", "filename", "mediatype", "mode", "filesize", "datahash", "metahash")
    facts = ("characters", "width", "height", "duration", "fps", "frames", "channels")
    for field in (*fields, *facts, "sample_rate", "soundtrack"):
        if result.get(field) not in (None, ""):
            table.add_row(field, str(result[field]))
    out.print(table)
    out.print()


# --- declarations ---------------------------------------------------------------------------


def _payer(
    settings: Settings, chain_id: int, payer: str | None, password_file: Path | None
) -> LocalAccount:
    from registry.chain.devnet import dev_account

    if payer:
        return _load_key(settings, payer, password_file)
    if chain_id == DEVNET_CHAIN_ID:
        return dev_account(1)
    raise InputError("--payer KEY is required on this chain (only the devnet has a built-in payer)")


def _open_registry(settings: Settings):
    from registry.chain.contract import Registry
    from registry.chain.deployment import Deployment

    return Registry.open(Deployment.load(settings.deployment_path), settings.rpc_url)


@app.command()
def sign(
    file: Annotated[Path, typer.Argument(help="The file to declare", readable=False)],
    key: KeyOpt,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Write the JSON here")] = None,
    gateway: Annotated[str, typer.Option(help="Gateway URL or URI template")] = "",
    password_file: PasswordFileOpt = None,
) -> None:
    """Sign a declaration of FILE for this registry (offline-verifiable JSON); submit it later."""
    from registry.chain.submit import prepare
    from registry.iscc import generate

    settings = get_settings()
    account = _load_key(settings, key, password_file)
    result = generate(file)
    signed = prepare(
        _open_registry(settings), account, result.iscc, result.datahash, result.metahash, gateway
    )
    text = json.dumps(signed.to_json(), indent=2)
    if output:
        output.write_text(text + "\n")
        err.print(f"signed declaration of {file.name} by {account.address} written to {output}")
    else:
        print(text)


@app.command()
def verify(
    signed_file: Annotated[Path, typer.Argument(help="Signed declaration JSON", readable=False)],
) -> None:
    """Check offline that a signed declaration was signed by its declarer."""
    from registry.chain.declaration import SignedDeclaration

    signed = SignedDeclaration.from_json(_read_text(signed_file))
    signed.verify()
    out.print(
        f"[green]valid[/green]: {signed.declaration.iscc} signed by {signed.declarer} "
        f"for chain {signed.domain.chain_id}, registry {signed.domain.verifying_contract}"
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


@app.command()
def declare(
    file: Annotated[Path | None, typer.Argument(help="The file to declare", readable=False)] = None,
    key: Annotated[
        str | None, typer.Option("--key", "-k", help="Declarer key file or name")
    ] = None,
    signed_file: Annotated[
        Path | None, typer.Option("--signed", help="Submit a declaration made by `sign`")
    ] = None,
    gateway: Annotated[str, typer.Option(help="Gateway URL or URI template")] = "",
    direct: Annotated[
        bool, typer.Option("--direct", help="Send from the declarer's own account (it pays gas)")
    ] = False,
    payer: Annotated[
        str | None,
        typer.Option(help="Key that pays gas for a signed declaration (devnet: built in)"),
    ] = None,
    via: Annotated[
        str | None,
        typer.Option(help="Relay through a registry service at this URL (it pays the gas)"),
    ] = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate the ISCC of FILE, sign it with --key and put the declaration on chain."""
    from registry.chain.declaration import SignedDeclaration
    from registry.chain.submit import declare_direct, prepare, submit_signed
    from registry.iscc import generate

    settings = get_settings()
    result = None
    if signed_file is not None:
        if file is not None or key is not None:
            raise InputError("give either FILE with --key, or --signed FILE, not both")
        signed = SignedDeclaration.from_json(_read_text(signed_file))
        signed.verify()
        if via:
            receipt = _declare_via(via, signed)
        else:
            registry = _open_registry(settings)
            chain_payer = _payer(settings, registry.deployment.chain_id, payer, password_file)
            receipt = submit_signed(registry, signed, chain_payer)
    else:
        if file is None or key is None:
            raise InputError("declare needs FILE and --key KEY (or --signed FILE)")
        account = _load_key(settings, key, password_file)
        result = generate(file)
        registry = _open_registry(settings)
        if direct and via:
            raise InputError("--direct sends from your own account; --via relays: pick one")
        metahash = _publish_metadata(settings, result, via)
        if direct:
            receipt = declare_direct(
                registry, account, result.iscc, result.datahash, metahash, gateway
            )
        else:
            signed = prepare(registry, account, result.iscc, result.datahash, metahash, gateway)
            if via:
                receipt = _declare_via(via, signed)
            else:
                chain_payer = _payer(settings, registry.deployment.chain_id, payer, password_file)
                receipt = submit_signed(registry, signed, chain_payer)
    data = receipt.to_dict() | ({"iscc": result.iscc, "file": str(file)} if result else {})
    if json_out:
        _print_json(data)
        return
    out.print(f"[bold green]{data['iscc_id']}[/bold green]  declared by {receipt.declarer}")
    if result:
        out.print(f"  {file}  {result.iscc}")
    out.print(f"  tx {receipt.tx_hash}  block {receipt.block_number}  gas {receipt.gas_used}")


def _publish_metadata(settings: Settings, result: Any, via: str | None) -> str | None:
    """The metahash to declare: of the document with the file's granular features, stored
    first where the indexer will find it (the service at `via`, else the local store), so the
    declaration's segments are indexed whichever arrives first; files without features keep
    the Meta-Code's metahash."""
    from registry.metadata import canonicalize

    document = result.declaration_document()
    if document is None:
        return result.metahash
    canonical = canonicalize(document)
    if via:
        from registry.api.client import ServiceClient

        ServiceClient(via).request("POST", "/v1/metadata", document, {"expect": canonical.metahash})
    else:
        with _open_store(settings) as store:
            store.put_metadata(canonical.digest, canonical.canonical)
    return canonical.metahash


def _declare_via(url: str, signed: Any) -> Any:
    from registry.api.client import ServiceClient
    from registry.chain.iscc_id import IsccId
    from registry.chain.submit import DeclarationReceipt

    result = ServiceClient(url).relay("declare", signed.to_json())
    return DeclarationReceipt(
        iscc_id=IsccId.parse(result["iscc_id"]),
        declarer=result["declarer"],
        tx_hash=result["tx_hash"],
        block_number=result["block_number"],
        gas_used=result["gas_used"],
        record=result.get("record"),
    )


# --- owner actions ----------------------------------------------------------------------------

RecordOpt = Annotated[
    int | None,
    typer.Option(
        "--record",
        help="Nonce the declaration was signed with (found on chain if omitted)",
        min=0,
    ),
]
DirectOpt = Annotated[
    bool, typer.Option("--direct", help="Send from the owner's own account (it pays gas)")
]
PayerOpt = Annotated[
    str | None, typer.Option(help="Key that pays gas for the signed action (devnet: built in)")
]


def _owner_action(
    kind: str,
    iscc_id: str,
    key: str,
    direct: bool,
    payer: str | None,
    record: int | None,
    password_file: Path | None,
    json_out: bool,
    **fields: Any,
) -> None:
    from registry.chain.actions import act_direct, act_relayed, make_action, sign_for
    from registry.chain.iscc_id import IsccId

    settings = get_settings()
    owner = _load_key(settings, key, password_file)
    parsed = IsccId.parse(iscc_id)
    registry = _open_registry(settings)
    if parsed.realm != registry.deployment.realm:
        raise InputError(
            f"{iscc_id} is of realm {parsed.realm}, this registry mints realm "
            f"{registry.deployment.realm}"
        )
    action = make_action(kind, parsed, **fields)
    if direct:
        receipt = act_direct(registry, owner, action, record)
    else:
        signed = sign_for(registry, owner, action)
        chain_payer = _payer(settings, registry.deployment.chain_id, payer, password_file)
        receipt = act_relayed(registry, signed, chain_payer, record)
    if json_out:
        _print_json(receipt.to_dict())
        return
    target = f" to {receipt.to}" if receipt.to else ""
    out.print(
        f"[bold green]{receipt.iscc_id}[/bold green]  {receipt.action}{target} by {receipt.owner}"
    )
    out.print(f"  tx {receipt.tx_hash}  block {receipt.block_number}  gas {receipt.gas_used}")


@app.command()
def revoke(
    iscc_id: Annotated[str, typer.Argument(help="ISCC-ID of the declaration")],
    key: KeyOpt,
    direct: DirectOpt = False,
    payer: PayerOpt = None,
    record: RecordOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Revoke a declaration you own (signed with --key and relayed, or --direct)."""
    _owner_action("revoke", iscc_id, key, direct, payer, record, password_file, json_out)


@app.command()
def update(
    iscc_id: Annotated[str, typer.Argument(help="ISCC-ID of the declaration")],
    key: KeyOpt,
    gateway: Annotated[str, typer.Option(help="New gateway URL or URI template")] = "",
    metahash: Annotated[
        str | None, typer.Option(help="New metahash (multihash 1e20... or 0x + 64 hex)")
    ] = None,
    direct: DirectOpt = False,
    payer: PayerOpt = None,
    record: RecordOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Replace the metahash and gateway of a declaration you own."""
    from registry.iscc.codec import multihash_to_digest

    _owner_action(
        "update",
        iscc_id,
        key,
        direct,
        payer,
        record,
        password_file,
        json_out,
        metahash=multihash_to_digest(metahash) if metahash else None,
        gateway=gateway,
    )


@app.command()
def transfer(
    iscc_id: Annotated[str, typer.Argument(help="ISCC-ID of the declaration")],
    to: Annotated[str, typer.Option("--to", help="Address of the new owner")],
    key: KeyOpt,
    direct: DirectOpt = False,
    payer: PayerOpt = None,
    record: RecordOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Hand a declaration you own to a new owner."""
    from eth_utils import is_address

    if not is_address(to):
        raise InputError(f"--to is not an address: {to!r}")
    _owner_action("transfer", iscc_id, key, direct, payer, record, password_file, json_out, to=to)


# --- index and resolve ----------------------------------------------------------------------


def _open_store(settings: Settings) -> Store:
    from registry.index.store import Store

    return Store.open(settings.database_url)


@app.command()
def index(
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep following new blocks until SIGTERM or Ctrl-C")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls with --follow")] = 1.0,
    max_range: Annotated[
        int, typer.Option(min=1, help="Most blocks per eth_getLogs call (shrinks when refused)")
    ] = 2000,
    reset: Annotated[
        bool, typer.Option("--reset", help="Forget what was indexed from this registry first")
    ] = False,
    defer_lookups_after: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Drop the lookup indexes while catching up on at least this many events, and "
            "build them at the end; 0: never (default: ISCC_REGISTRY_DEFER_LOOKUPS_AFTER or "
            f"{DEFER_LOOKUPS_AFTER:,})",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Mirror the registry's events into the store (idempotent: safe to run again, or to kill).

    Reorganised blocks are rolled back and replayed; with --follow the indexer rides out node
    failures and prints lag and throughput (JSON lines with --json). While a large backlog is
    caught up, lookups by ISCC-CODE, datahash and declarer scan the store instead of using
    indexes, and conflict detection waits for the end.
    """
    settings = get_settings()
    store = _open_store(settings)
    try:
        _index(store, settings, follow, poll, max_range, reset, defer_lookups_after, json_out)
    except ChainUnavailable:
        # An indexer that cannot reach its node (any more) leaves the store with fast lookups,
        # whatever a catch-up it cut short had dropped; the next large one drops them again.
        store.restore_lookups()
        raise


def _index(
    store: Store,
    settings: Settings,
    follow: bool,
    poll: float,
    max_range: int,
    reset: bool,
    defer_lookups_after: int | None,
    json_out: bool,
) -> None:
    from registry.index.follower import Follower, SyncReport

    follower = Follower(
        _open_registry(settings),
        store,
        confirmations=settings.confirmations,
        max_range=max_range,
        defer_lookups_after=(
            settings.defer_lookups_after if defer_lookups_after is None else defer_lookups_after
        ),
    )
    if reset:
        removed = follower.store.forget(follower.chain_id, follower.contract)
        err.print(f"forgot {removed} declarations indexed from {follower.contract}")

    def show(report: SyncReport) -> None:
        if json_out:
            print(json.dumps(report.to_dict()), flush=True)
            return
        rolled = f", {report.events_rolled_back} rolled back" if report.events_rolled_back else ""
        parts = [
            f"{seconds:.2f} s {what}"
            for seconds, what in (
                (report.index_seconds, "building lookup indexes"),
                (report.detect_seconds, "conflict detection"),
            )
            if seconds >= 0.01
        ]
        of_it = f" ({', '.join(parts)})" if parts else ""
        out.print(
            f"blocks {report.from_block}-{report.to_block} (head {report.head}, lag "
            f"{report.lag}): {report.events_new} new of {report.events_seen} events{rolled} in "
            f"{report.seconds:.2f} s{of_it}, {report.events_per_second:,.0f} events/s indexed",
            highlight=False,
        )

    if not follow:
        show(follower.sync())
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # The batch in flight commits or rolls back as a whole; the loop stops after it.
        signal.signal(signum, lambda *_: stop.set())
    err.print(f"following {follower.contract}; SIGTERM or Ctrl-C to stop")
    follower.follow(stop, poll_interval=poll, on_progress=show)
    err.print("stopped")


@app.command()
def resolve(
    query: Annotated[str, typer.Argument(help="ISCC-ID, ISCC-CODE, datahash or declarer address")],
    json_out: JsonOpt = False,
) -> None:
    """Find the declarations behind an ISCC-ID, ISCC-CODE, datahash or declarer (from the index)."""
    from registry.index.search import resolve as resolve_query

    resolution = resolve_query(_open_store(get_settings()), query)
    data = resolution.to_dict()
    if json_out:
        _print_json(data)
    else:
        print_declarations(out, data["records"], title=f"{resolution.kind} {resolution.query}")
    if not resolution.records:
        raise typer.Exit(1)


ThresholdOpt = Annotated[
    int,
    typer.Option(min=0, max=64, help="Most differing bits (of 64) per unit to count as similar"),
]
LimitOpt = Annotated[int, typer.Option(min=1, max=1000, help="Most matches to show")]
RevokedOpt = Annotated[
    bool, typer.Option("--include-revoked", help="Show revoked declarations too")
]


@app.command()
def search(
    iscc: Annotated[str, typer.Argument(help="An ISCC-CODE or a single ISCC-UNIT")],
    threshold: ThresholdOpt = 10,
    limit: LimitOpt = 20,
    include_revoked: RevokedOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Find declarations similar to an ISCC-CODE or unit (in the local index)."""
    from registry.index.similarity import SimilarityIndex, query_units, similar

    units = query_units(iscc)
    store = _open_store(get_settings())
    found = similar(store, SimilarityIndex(store), iscc, units, threshold, limit, include_revoked)
    if json_out:
        _print_json(found)
        return
    print_matches(out, found)


@app.command()
def match(
    file: Annotated[Path, typer.Argument(help="The file to look for", readable=False)],
    threshold: ThresholdOpt = 10,
    limit: LimitOpt = 20,
    include_revoked: RevokedOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Who declared FILE, or something like it: its ISCC, exact and similar declarations."""
    from registry.index.similarity import SimilarityIndex, match_file

    store = _open_store(get_settings())
    found = match_file(store, SimilarityIndex(store), file, threshold, limit, include_revoked)
    if json_out:
        _print_json(found)
        return
    out.print(f"[bold]{found['iscc']['iscc']}[/bold]  {file}", highlight=False, soft_wrap=True)
    print_declarations(out, found["exact"], title="these exact bytes")
    print_matches(out, found["similar"])
    print_snippets(out, found["snippets"])


def _place(offset: int, length: int, unit: str) -> str:
    if unit == "ms":
        return f"{offset / 1000:.1f} s to {(offset + length) / 1000:.1f} s"
    return f"characters {offset} to {offset + length}"


def print_snippets(console: Console, snippets: list[dict[str, Any]]) -> None:
    if not snippets:
        console.print("not found as an excerpt of a declared work")
        return
    console.print(f"\nan excerpt of {len(snippets)} declared work(s), best first\n")
    for m in snippets:
        d = m["declaration"]
        console.print(
            f"[bold green]{d['iscc_id']}[/bold green]  score {m['score']:.3f}  by {d['declarer']}",
            highlight=False,
            soft_wrap=True,
        )
        for k in m["kinds"]:
            console.print(
                f"  {k['kind']}: at {_place(k['offset'], k['length'], k['unit'])} of the work, "
                f"{k['matched']} segments, score {k['score']:.3f}",
                highlight=False,
            )


def print_matches(console: Console, found: dict[str, Any]) -> None:
    matches = found["matches"]
    if not matches:
        console.print(
            f"no similar declaration within {found['threshold']} bits on "
            f"{', '.join(found['unit_types']) or 'any unit'}"
        )
        return
    console.print(f"{len(matches)} similar declaration(s), best first\n")
    for m in matches:
        d = m["declaration"]
        units = "  ".join(f"{u['unit_type']} {u['distance']}" for u in m["units"])
        revoked = "  [red]revoked[/red]" if d.get("revoked") else ""
        console.print(
            f"[bold green]{d['iscc_id']}[/bold green]  score {m['score']:.3f}  "
            f"by {d['declarer']}{revoked}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"  {d['iscc_code']}  distances: {units}", highlight=False, soft_wrap=True)


def print_declarations(console: Console, records: list[dict[str, Any]], title: str = "") -> None:
    """One block per declaration: identifiers stay on one line, whatever the terminal width."""
    if not records:
        console.print(f"no declaration found for {title}")
        return
    console.print(f"{len(records)} declaration(s) for {title}\n", highlight=False)
    for r in records:
        status = "" if r["valid"] else f"  [red]invalid: {r['invalid_reason']}[/red]"
        console.print(
            f"[bold green]{r['iscc_id']}[/bold green]{status}", highlight=False, soft_wrap=True
        )
        table = Table(show_header=False, box=None, padding=(0, 1, 0, 2))
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for label, key in (
            ("declarer", "declarer"),
            ("ISCC-CODE", "iscc_code"),
            ("datahash", "datahash"),
            ("metahash", "metahash"),
            ("gateway", "gateway"),
            ("block", "block_number"),
            ("tx", "tx_hash"),
        ):
            if r.get(key) not in (None, ""):
                table.add_row(label, str(r[key]))
        console.print(table)
        console.print()


@app.command()
def conflicts(
    query: Annotated[
        str | None,
        typer.Argument(help="An ISCC-ID or a declarer address; all conflicts if omitted"),
    ] = None,
    status: Annotated[
        str, typer.Option(help="open (neither side revoked), resolved, or all")
    ] = "all",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most conflicts to show")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Conflicts to skip (paging)")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Declarations by different declarers of the same or similar content (from the index);
    the earlier declaration holds priority."""
    from registry.index.conflicts import list_conflicts
    from registry.index.search import classify

    filters: dict[str, str] = {}
    if query is not None:
        kind, normalized = classify(query)
        if kind not in ("iscc-id", "declarer"):
            raise InputError(f"conflicts are listed by ISCC-ID or declarer address, not {kind}")
        filters["iscc_id" if kind == "iscc-id" else "declarer"] = normalized
    found = list_conflicts(
        _open_store(get_settings()),
        status=status,  # type: ignore[arg-type]
        limit=limit,
        offset=offset,
        **filters,
    )
    if json_out:
        _print_json(found)
        return
    if not found:
        out.print("no conflicts recorded" + (f" for {query}" if query else ""))
        return
    for c in found:
        earlier, later = c["earlier"], c["later"]
        state = "[green]resolved[/green]" if c["resolved"] else "[red]open[/red]"
        out.print(
            f"[bold]{later['iscc_id']}[/bold] by {later['declarer']} conflicts with earlier "
            f"[bold]{earlier['iscc_id']}[/bold] by {earlier['declarer']}  {state}",
            highlight=False,
            soft_wrap=True,
        )
        for e in c["evidence"]:
            unit = (
                f" {e['unit_type']} ({e['distance']} of {e['bits']} bits differ)"
                if ("unit_type" in e)
                else ""
            )
            out.print(f"  {e['kind']}{unit}  strength {e['strength']:.3f}", highlight=False)
        for d in c["disagreements"]:
            out.print(
                f"  {d['field']} differs: {d['earlier']!r} (earlier) vs {d['later']!r} (later)",
                highlight=False,
                soft_wrap=True,
            )


# --- devnet and demo ------------------------------------------------------------------------


def _devnet(settings: Settings):
    from registry.chain.devnet import Devnet

    return Devnet(
        settings.home, settings.devnet_port, settings.hardhat_dir, settings.deployment_path
    )


@devnet_app.command("start")
def devnet_start(json_out: JsonOpt = False) -> None:
    """Start a Hardhat node on 127.0.0.1 and deploy the registry (no-op if already up)."""
    deployment = _devnet(get_settings()).start()
    if json_out:
        from dataclasses import asdict

        _print_json(asdict(deployment))
    else:
        out.print(
            f"devnet up at {deployment.rpc_url}: chain {deployment.chain_id}, "
            f"IsccRegistry at {deployment.address} (block {deployment.block})"
        )


@devnet_app.command("stop")
def devnet_stop() -> None:
    """Stop the devnet started by `devnet start` (its chain is gone afterwards)."""
    if _devnet(get_settings()).stop():
        out.print("devnet stopped")
    else:
        out.print("no devnet was running")


@devnet_app.command("status")
def devnet_status(json_out: JsonOpt = False) -> None:
    """Tell whether the devnet runs, its head block and the deployed registry."""
    status = _devnet(get_settings()).status()
    if json_out:
        from dataclasses import asdict

        _print_json(asdict(status))
    elif status.running:
        where = (
            f"registry {status.deployment.address}" if status.deployment else "no registry deployed"
        )
        out.print(f"running (pid {status.pid}) at {status.rpc_url}, block {status.block}, {where}")
    else:
        out.print("not running")
    if not status.running:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    index: Annotated[
        bool,
        typer.Option(
            "--index/--no-index",
            help="Run the indexer in the same process (default); --no-index only serves the "
            "store, e.g. next to a separate `iscc-registry index --follow`",
        ),
    ] = True,
    workers: Annotated[int, typer.Option(help="API processes (with --no-index only)")] = 1,
) -> None:
    """Run the HTTP API (resolve, search, match, metadata, relay) on the local store."""
    from registry.api import server

    if workers < 1:
        raise InputError("--workers must be at least 1")
    if workers > 1 and index:
        # One indexer per store: N processes each following the chain would race on it.
        raise InputError("--workers > 1 needs --no-index (run `iscc-registry index --follow`)")
    settings = get_settings()
    _open_store(settings).close()  # fail here, with one line, if the store cannot be opened
    err.print(f"serving on http://{host}:{port} (OpenAPI at /docs)")
    if workers > 1:
        server.run(settings, "registry.api.app:app_from_env", host, port, workers)
        return
    from registry.api import create_app

    server.run(settings, create_app(settings, follow=index), host, port)


@app.command()
def demo(
    keep: Annotated[
        bool, typer.Option(help="Leave the devnet running and its files in place")
    ] = False,
) -> None:
    """Run the whole flow on a fresh devnet: deploy, declare the samples from two keys, index,
    resolve, and print what happened."""
    from registry.demo import run_demo

    run_demo(out, keep=keep)


def main() -> None:
    try:
        app()
    except RegistryError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
