"""`sign`, `verify`, `declare`, `revoke`, `update` and `transfer`: each parses its options and
calls one function of registry.chain.flows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from registry.cli.common import (
    DEVNET_CHAIN_ID,
    JsonOpt,
    KeyOpt,
    PasswordFileOpt,
    app,
    err,
    get_settings,
    load_key,
    open_registry,
    open_store,
    out,
    print_json,
    read_text,
)
from registry.errors import InputError, StoreError

if TYPE_CHECKING:
    from registry.chain.contract import Registry
    from registry.chain.flows import Publish, Submitter
    from registry.config import Settings

GatewayOpt = Annotated[str, typer.Option(metavar="URL", help="Gateway URL or URI template")]
PayerOpt = Annotated[
    str | None,
    typer.Option(
        metavar="KEY",
        help="Key that pays the gas of a signed declaration or action (devnet: built in)",
    ),
]
ViaOpt = Annotated[
    str | None,
    typer.Option(
        metavar="URL", help="Relay through a registry service at this URL (it pays the gas)"
    ),
]
DirectOpt = Annotated[
    bool, typer.Option("--direct", help="Send from your own account (it pays the gas)")
]


def _submitter(
    settings: Settings,
    registry: Registry | None,
    payer: str | None,
    via: str | None,
    password_file: Path | None,
) -> Submitter:
    """Who pays: a registry service (--via), else a payer key on chain (the devnet's built-in
    one unless --payer names one)."""
    if via:
        from registry.api.client import ServiceClient, ServiceSubmitter

        return ServiceSubmitter(ServiceClient(via))
    from registry.chain.flows import PaidBy

    assert registry is not None
    if payer:
        account = load_key(settings, payer, password_file)
    elif registry.deployment.chain_id == DEVNET_CHAIN_ID:
        from registry.chain.devnet import dev_account

        account = dev_account(1)
    else:
        raise InputError(
            "--payer KEY is required on this chain (only the devnet has a built-in payer)"
        )
    return PaidBy(registry, account)


def _publisher(settings: Settings, via: str | None) -> Publish:
    """Where a declaration's metadata document goes before it is declared: the service at
    `via`, else the local store, so the indexer finds it whichever arrives first."""
    if via:
        from registry.api.client import ServiceClient

        return ServiceClient(via).publish

    def into_store(canonical: Any) -> None:
        with open_store(settings) as store:
            store.put_metadata(canonical.digest, canonical.canonical)

    return into_store


LicenseOpt = Annotated[
    str | None,
    typer.Option("--license", metavar="URL", help="URL of the licence the work is offered under"),
]
RightsOpt = Annotated[
    str | None,
    typer.Option(metavar="TEXT", help="Copyright notice / rights holder, e.g. '(c) 2025 ACME'"),
]
AcquireOpt = Annotated[
    str | None, typer.Option(metavar="URL", help="URL where a licence can be acquired")
]


@app.command()
def sign(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The file to declare", readable=False)
    ],
    key: KeyOpt,
    output: Annotated[
        Path | None, typer.Option("--out", "-o", metavar="FILE", help="Write the JSON here")
    ] = None,
    gateway: GatewayOpt = "",
    license_url: LicenseOpt = None,
    rights: RightsOpt = None,
    acquire: AcquireOpt = None,
    via: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Publish the metadata document (--license, --rights, --acquire) to this "
            "registry service instead of the local store",
        ),
    ] = None,
    password_file: PasswordFileOpt = None,
) -> None:
    """Sign a declaration of FILE for this registry (offline-verifiable JSON); submit it later.
    Licence and rights metadata (--license, --rights, --acquire) go into the document the
    signature's metahash commits to, published now (to the local store, or --via a service)
    so the indexer finds it when the declaration arrives."""
    from registry.chain.flows import sign_file

    settings = get_settings()
    fields = metadata_fields(license_url=license_url, rights=rights, acquire=acquire)
    if via and not fields:
        raise InputError("--via publishes the metadata of --license, --rights or --acquire")
    account = load_key(settings, key, password_file)
    publish = _publisher(settings, via) if fields else None
    _result, signed = sign_file(
        open_registry(settings), account, file, gateway, publish, fields=fields
    )
    text = json.dumps(signed.to_json(), indent=2)
    if output:
        output.write_text(text + "\n")
        err.print(f"signed declaration of {file.name} by {account.address} written to {output}")
    else:
        print(text)


@app.command()
def verify(
    signed_file: Annotated[
        Path, typer.Argument(metavar="SIGNED_FILE", help="Signed declaration JSON", readable=False)
    ],
) -> None:
    """Check offline that a signed declaration was signed by its declarer."""
    from registry.chain.declaration import SignedDeclaration

    signed = SignedDeclaration.from_json(read_text(signed_file, "a signed declaration"))
    signed.verify()
    out.print(
        f"[green]valid[/green]: {signed.declaration.iscc} signed by {signed.declarer} "
        f"for chain {signed.domain.chain_id}, registry {signed.domain.verifying_contract}"
    )


@app.command()
def declare(
    file: Annotated[
        Path | None, typer.Argument(metavar="FILE", help="The file to declare", readable=False)
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", "-k", metavar="KEY", help="Declarer key file or name")
    ] = None,
    signed_file: Annotated[
        Path | None,
        typer.Option("--signed", metavar="SIGNED_FILE", help="Submit a declaration made by `sign`"),
    ] = None,
    gateway: GatewayOpt = "",
    direct: DirectOpt = False,
    payer: PayerOpt = None,
    via: ViaOpt = None,
    sealed: Annotated[
        bool,
        typer.Option(
            "--sealed",
            help="Commit a hiding hash first, then reveal: priority is the commitment's time, "
            "so a copy taken from the reveal cannot get ahead (two transactions, the payer's)",
        ),
    ] = False,
    license_url: LicenseOpt = None,
    rights: RightsOpt = None,
    acquire: AcquireOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate the ISCC of FILE, sign it with --key and put the declaration on chain. The
    licence and rights metadata (--license, --rights, --acquire) go into the document the
    declaration's metahash commits to; licence conflicts compare them between declarers."""
    from registry.chain.flows import declare_file, declare_file_sealed, submit_declaration

    settings = get_settings()
    fields = metadata_fields(license_url=license_url, rights=rights, acquire=acquire)
    if sealed and (direct or via or signed_file is not None):
        raise InputError(
            "--sealed signs, commits and reveals here with --key (and --payer): "
            "not with --direct, --via or --signed"
        )
    if signed_file is not None:
        if file is not None or key is not None:
            raise InputError("give either FILE with --key, or --signed FILE, not both")
        if fields:
            raise InputError(
                "a signed declaration's metadata is fixed by its signature: give --license, "
                "--rights and --acquire when signing, or declare FILE with them"
            )
        from registry.chain.declaration import SignedDeclaration

        signed = SignedDeclaration.from_json(read_text(signed_file, "a signed declaration"))
        if via:
            _forward_metadata(settings, signed.declaration.metahash, via)
        registry = None if via else open_registry(settings)
        receipt = submit_declaration(
            signed, _submitter(settings, registry, payer, via, password_file)
        )
        _print_declared(receipt.to_dict(), receipt.declarer, json_out, signed.domain.chain_id)
        return
    if file is None or key is None:
        raise InputError("declare needs FILE and --key KEY (or --signed FILE)")
    if direct and via:
        raise InputError("--direct sends from your own account; --via relays: pick one")
    account = load_key(settings, key, password_file)
    registry = open_registry(settings)
    if sealed:
        from registry.chain.flows import PaidBy

        paid_by = _submitter(settings, registry, payer, None, password_file)
        assert isinstance(paid_by, PaidBy)
        declared = declare_file_sealed(
            registry,
            account,
            file,
            paid_by,
            gateway=gateway,
            publish=_publisher(settings, None),
            fields=fields,
        )
        _print_declared(
            declared.to_dict(), declared.receipt.declarer, json_out, registry.deployment.chain_id
        )
        return
    declared = declare_file(
        registry,
        account,
        file,
        gateway=gateway,
        submitter=None if direct else _submitter(settings, registry, payer, via, password_file),
        publish=_publisher(settings, via),
        fields=fields,
    )
    _print_declared(
        declared.to_dict(), declared.receipt.declarer, json_out, registry.deployment.chain_id
    )


def _forward_metadata(settings: Settings, metahash: bytes, via: str) -> None:
    """The document a signed declaration commits to, from the local store (where `sign`
    published it) to the service that relays it, so the service's indexer finds its licence
    fields; nothing when the local store does not have it (a Meta-Code metahash, or signed
    elsewhere)."""
    try:
        with open_store(settings, create=False) as store:
            document = store.get_metadata(metahash)
    except StoreError:  # no local store: nothing was published here
        return
    if document is None:
        return
    from registry.api.client import ServiceClient
    from registry.metadata import canonicalize

    ServiceClient(via).publish(canonicalize(json.loads(document)))


def metadata_fields(
    *, license_url: str | None, rights: str | None, acquire: str | None
) -> dict[str, str]:
    """The metadata fields given on the command line (iscc-schema names), checked."""
    from urllib.parse import urlsplit

    fields: dict[str, str] = {}
    for name, url in (("license", license_url), ("acquire", acquire)):
        if url is None:
            continue
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(f"--{name} must be an http(s) URL, not {url!r}")
        fields[name] = url.strip()
    if rights is not None:
        if not rights.strip():
            raise InputError("--rights is empty: name the rights holder")
        fields["rights"] = rights.strip()
    return fields


def _print_declared(data: dict[str, Any], declarer: str, json_out: bool, chain_id: int) -> None:
    if json_out:
        print_json(data)
        return
    out.print(f"[bold green]{data['iscc_id']}[/bold green]  declared by {declarer}")
    if data.get("committed_at"):
        out.print(f"  sealed: priority from its commitment at {data['committed_at']} us")
    if "file" in data:
        out.print(f"  {data['file']}  {data['iscc']}")
    out.print(f"  tx {data['tx_hash']}  block {data['block_number']}  gas {data['gas_used']}")
    _print_explorer_link(chain_id, data["tx_hash"])


def _print_explorer_link(chain_id: int, tx_hash: str) -> None:
    """The transaction on the chain's block explorer, where the networks table has one."""
    from registry.chain.networks import network_for

    network = network_for(chain_id, get_settings().networks_path)
    link = network.tx_link(tx_hash)
    if link:
        out.print(f"  {network.name}: {link}", highlight=False, soft_wrap=True)


# --- owner actions ----------------------------------------------------------------------------

IsccIdArg = Annotated[str, typer.Argument(metavar="ISCC_ID", help="ISCC-ID of the declaration")]
RecordOpt = Annotated[
    int | None,
    typer.Option(
        "--record",
        metavar="NONCE",
        help="Nonce the declaration was signed with (found on chain if omitted)",
        min=0,
    ),
]


def _owner_action(
    kind: str,
    iscc_id: str,
    key: str,
    direct: bool,
    payer: str | None,
    via: str | None,
    record: int | None,
    password_file: Path | None,
    json_out: bool,
    **fields: Any,
) -> None:
    from registry.chain.flows import act_as_owner
    from registry.chain.iscc_id import IsccId

    if direct and via:
        raise InputError("--direct sends from your own account; --via relays: pick one")
    settings = get_settings()
    owner = load_key(settings, key, password_file)
    registry = open_registry(settings)
    receipt = act_as_owner(
        registry,
        owner,
        kind,
        IsccId.parse(iscc_id),
        submitter=None if direct else _submitter(settings, registry, payer, via, password_file),
        record=record,
        **fields,
    )
    if json_out:
        print_json(receipt.to_dict())
        return
    target = f" to {receipt.to}" if receipt.to else ""
    out.print(
        f"[bold green]{receipt.iscc_id}[/bold green]  {receipt.action}{target} by {receipt.owner}"
    )
    out.print(f"  tx {receipt.tx_hash}  block {receipt.block_number}  gas {receipt.gas_used}")
    _print_explorer_link(registry.deployment.chain_id, receipt.tx_hash)


@app.command()
def revoke(
    iscc_id: IsccIdArg,
    key: KeyOpt,
    direct: DirectOpt = False,
    payer: PayerOpt = None,
    via: ViaOpt = None,
    record: RecordOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Revoke a declaration you own (signed with --key and relayed, or --direct)."""
    _owner_action("revoke", iscc_id, key, direct, payer, via, record, password_file, json_out)


@app.command()
def update(
    iscc_id: IsccIdArg,
    key: KeyOpt,
    gateway: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help='New gateway URL or URI template ("" removes it; kept if omitted)'
        ),
    ] = None,
    metahash: Annotated[
        str | None,
        typer.Option(
            metavar="HASH",
            help='New metahash, multihash 1e20... or 0x + 64 hex ("" removes it; kept if omitted)',
        ),
    ] = None,
    direct: DirectOpt = False,
    payer: PayerOpt = None,
    via: ViaOpt = None,
    record: RecordOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change the metahash, the gateway or both of a declaration you own."""
    from registry.iscc.codec import multihash_to_digest

    _owner_action(
        "update",
        iscc_id,
        key,
        direct,
        payer,
        via,
        record,
        password_file,
        json_out,
        metahash=multihash_to_digest(metahash) if metahash else (b"" if metahash == "" else None),
        gateway=gateway,
    )


@app.command()
def transfer(
    iscc_id: IsccIdArg,
    to: Annotated[str, typer.Option("--to", metavar="ADDRESS", help="Address of the new owner")],
    key: KeyOpt,
    direct: DirectOpt = False,
    payer: PayerOpt = None,
    via: ViaOpt = None,
    record: RecordOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Hand a declaration you own to a new owner."""
    from eth_utils import is_address

    if not is_address(to):
        raise InputError(f"--to is not an address: {to!r}")
    _owner_action(
        "transfer", iscc_id, key, direct, payer, via, record, password_file, json_out, to=to
    )
