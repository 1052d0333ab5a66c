"""`license grant` and `license terminate`: each parses its options into licence terms
(registry.ledger.terms) and calls one function of registry.ledger.licensing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from registry.cli.common import (
    JsonOpt,
    KeyOpt,
    PasswordFileOpt,
    get_settings,
    license_app,
    load_key,
    open_registry,
    out,
    print_json,
)
from registry.cli.declare import DirectOpt, PayerOpt, ViaOpt, _print_explorer_link, _submitter
from registry.errors import InputError, InvalidCode

if TYPE_CHECKING:
    from registry.chain.contract import Registry
    from registry.chain.flows import LicenceSubmitter
    from registry.config import Settings

GrantIdArg = Annotated[
    str, typer.Argument(metavar="GRANT_ID", help="The grant's id (0x + 64 hex digits)")
]


def _pick_payer(direct: bool, via: str | None) -> None:
    if direct and via:
        raise InputError("--direct sends from your own account; --via relays: pick one")


def _licence_submitter(
    settings: Settings,
    registry: Registry,
    direct: bool,
    payer: str | None,
    via: str | None,
    password_file: Path | None,
) -> LicenceSubmitter | None:
    """Who pays: nobody else with --direct, else as for declarations (a service with --via, a
    payer key, the devnet's built-in payer); each of those submits grants too."""
    if direct:
        return None
    return cast("LicenceSubmitter", _submitter(settings, registry, payer, via, password_file))


def read_terms_document(path: Path) -> bytes:
    """The bytes of a licence terms document the user named, to hash."""
    if path.exists() and not path.is_file():
        raise InputError(f"{path} is not a regular file")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def build_terms(
    *,
    to: str | None,
    public: bool,
    territory: str | None,
    world: bool,
    excluded: str | None,
    uses: str,
    conditions: str,
    start: str | None,
    until: str | None,
    exclusive: bool,
    sublicensable: bool,
    parent: str | None,
    terms_url: str,
    terms_file: Path | None,
) -> Any:
    """The GrantTerms the options describe; InputError (InvalidTerms) for anything unclear."""
    from eth_utils import is_address

    from registry.ledger.licensing import default_start, terms_hash
    from registry.ledger.terms import (
        GrantTerms,
        Territories,
        parse_conditions,
        parse_period,
        parse_territories,
        parse_uses,
    )

    if public == (to is not None):
        raise InputError("name the licensee with --to ADDRESS, or grant to everyone with --public")
    if to is not None and not is_address(to):
        raise InputError(f"--to is not an address: {to!r}")
    if world and territory is not None:
        raise InputError("--territory names the territories, --world the whole world: pick one")
    if excluded is not None and not world:
        raise InputError("--except excludes territories from --world; use it with --world")
    if world:
        territories = Territories.world()
        if excluded is not None:
            territories = parse_territories(f"world except {excluded}")
    elif territory is not None:
        territories = parse_territories(territory)
    else:
        raise InputError("name the territories with --territory DE,AT, or --world")
    document = read_terms_document(terms_file) if terms_file is not None else None
    return GrantTerms(
        territories=territories,
        uses=parse_uses(uses),
        period=parse_period(start if start is not None else default_start(), until),
        conditions=parse_conditions(conditions),
        exclusive=exclusive,
        sublicensable=sublicensable,
        licensee=to,
        parent=parent,
        terms_url=terms_url,
        terms_hash=terms_hash(document) if document is not None else None,
    )


@license_app.command("grant")
def grant(
    work: Annotated[
        str, typer.Option("--work", metavar="ISCC_ID", help="ISCC-ID of the declaration licensed")
    ],
    key: KeyOpt,
    uses: Annotated[
        str,
        typer.Option(
            "--use", metavar="USES", help="Uses licensed, comma-separated: svod,avod,tvod,..."
        ),
    ],
    to: Annotated[
        str | None, typer.Option("--to", metavar="ADDRESS", help="The licensee's address")
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="A public licence, open to everyone")
    ] = False,
    territory: Annotated[
        str | None,
        typer.Option("--territory", metavar="CODES", help="ISO 3166-1 alpha-2 codes: DE,AT,CH"),
    ] = None,
    world: Annotated[bool, typer.Option("--world", help="The whole world")] = False,
    excluded: Annotated[
        str | None,
        typer.Option("--except", metavar="CODES", help="With --world: territories excluded"),
    ] = None,
    conditions: Annotated[
        str,
        typer.Option(
            metavar="NAMES",
            help="Conditions: commercial (use allowed), derivatives (allowed), attribution "
            "(required); comma-separated",
        ),
    ] = "",
    start: Annotated[
        str | None,
        typer.Option("--from", metavar="DATE", help="Start, YYYY-MM-DD or ISO time (default: now)"),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="DATE", help="End (exclusive), YYYY-MM-DD; default: none"),
    ] = None,
    exclusive: Annotated[
        bool, typer.Option("--exclusive", help="Exclusive for its territories, uses and term")
    ] = False,
    sublicensable: Annotated[
        bool, typer.Option("--sublicensable", help="The licensee may grant sublicences")
    ] = False,
    parent: Annotated[
        str | None,
        typer.Option("--parent", metavar="GRANT_ID", help="Grant this sublicenses (0x + 64 hex)"),
    ] = None,
    terms_url: Annotated[
        str, typer.Option("--terms-url", metavar="URL", help="Where the licence terms are")
    ] = "",
    terms_file: Annotated[
        Path | None,
        typer.Option(
            "--terms-file",
            metavar="FILE",
            help="The terms document: its sha256 is recorded",
            readable=False,
        ),
    ] = None,
    direct: DirectOpt = False,
    payer: PayerOpt = None,
    via: ViaOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Grant a licence over a declaration on the licence ledger (signed with --key and relayed,
    or --direct). The ledger records it as your claim; whether you held the right is judged
    from the chain's history (licence conflicts)."""
    from registry.chain.iscc_id import IsccId
    from registry.ledger.licensing import grant_licence

    _pick_payer(direct, via)
    terms = build_terms(
        to=to, public=public, territory=territory, world=world, excluded=excluded, uses=uses,
        conditions=conditions, start=start, until=until, exclusive=exclusive,
        sublicensable=sublicensable, parent=parent, terms_url=terms_url, terms_file=terms_file,
    )  # fmt: skip
    try:
        iscc_id = IsccId.parse(work)
    except InvalidCode as exc:
        raise InputError(f"--work is not an ISCC-ID: {exc}") from None
    settings = get_settings()
    account = load_key(settings, key, password_file)
    registry = open_registry(settings)
    granted = grant_licence(
        registry,
        account,
        iscc_id,
        terms,
        submitter=_licence_submitter(settings, registry, direct, payer, via, password_file),
    )
    data = granted.to_dict()
    if json_out:
        print_json(data)
        return
    out.print(f"[bold green]{data['grant_id']}[/bold green]  granted by {data['grantor']}")
    out.print(f"  {data['iscc_id']}: {granted.terms.describe()}", highlight=False)
    out.print(f"  tx {data['tx_hash']}  block {data['block_number']}  gas {data['gas_used']}")
    _print_explorer_link(registry.deployment.chain_id, data["tx_hash"])


@license_app.command("terminate")
def terminate(
    grant_id: GrantIdArg,
    key: KeyOpt,
    direct: DirectOpt = False,
    payer: PayerOpt = None,
    via: ViaOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """End a grant as its grantor, or give a licence up as its licensee. Final: a terminated
    grant cannot be terminated again, nor revived."""
    import re

    from registry.ledger.licensing import terminate_licence

    _pick_payer(direct, via)
    if not re.fullmatch(r"0x[0-9a-fA-F]{64}", grant_id):
        raise InputError(f"not a grant id (0x + 64 hex digits): {grant_id!r}")
    settings = get_settings()
    account = load_key(settings, key, password_file)
    registry = open_registry(settings)
    receipt = terminate_licence(
        registry,
        account,
        grant_id,
        submitter=_licence_submitter(settings, registry, direct, payer, via, password_file),
    )
    if json_out:
        print_json(receipt.to_dict())
        return
    out.print(f"[bold]{receipt.grant_id}[/bold]  terminated by {receipt.by}")
    out.print(f"  tx {receipt.tx_hash}  block {receipt.block_number}  gas {receipt.gas_used}")
    _print_explorer_link(registry.deployment.chain_id, receipt.tx_hash)
