"""`deploy` and `networks`: the registry on any EVM chain, over registry.chain.deploy and
registry.chain.networks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from registry.cli.common import (
    JsonOpt,
    PasswordFileOpt,
    app,
    err,
    get_settings,
    load_key,
    out,
    print_json,
)
from registry.errors import InputError

if TYPE_CHECKING:
    from registry.chain.networks import Network

__all__ = ["deploy", "networks"]


@app.command()
def deploy(
    rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of a node of the target chain")],
    key: Annotated[
        str, typer.Option("--key", "-k", help="Key file or key name of the paying account")
    ],
    realm: Annotated[
        int, typer.Option(min=0, max=1, help="ISCC-ID realm: 0 for testnets, 1 for production")
    ] = 0,
    hub_id: Annotated[
        int, typer.Option("--hub-id", min=0, max=4095, help="HUB-ID this registry mints under")
    ] = 0,
    salt: Annotated[
        str, typer.Option(help="CREATE2 salt, 32 bytes hex (another salt: another address)")
    ] = "0x" + "00" * 32,
    deterministic: Annotated[
        bool | None,
        typer.Option(
            "--deterministic/--plain",
            help="Through the standard CREATE2 deployer (same address on every chain) or a "
            "plain CREATE; default: CREATE2 where the chain has the deployer",
            show_default=False,
        ),
    ] = None,
    confirmations: Annotated[
        int | None,
        typer.Option(min=0, help="Blocks to wait on (default: the network's)", show_default=False),
    ] = None,
    max_fee_gwei: Annotated[
        float | None,
        typer.Option(help="Highest fee per gas to offer, in gwei (default: the settings')"),
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Deployment file to write (default: the configured one)"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing deployment file")
    ] = False,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Deploy the registry and its licence ledger to any EVM chain, write the deployment file
    and the material to verify the contracts on a block explorer."""
    from registry.chain.deploy import deploy_to
    from registry.chain.sender import GWEI

    settings = get_settings()
    try:
        salt_bytes = bytes.fromhex(salt.removeprefix("0x"))
    except ValueError:
        raise InputError(f"--salt is not hex: {salt}") from None
    account = load_key(settings, key, password_file)
    cap = max_fee_gwei if max_fee_gwei is not None else settings.relayer_max_fee_gwei

    def starting(network: Network) -> None:
        if not json_out:
            err.print(
                f"deploying to {network.name} (chain {network.chain_id}) from {account.address}"
            )

    done = deploy_to(
        rpc,
        account,
        realm,
        hub_id,
        out_file or settings.deployment_path,
        salt=salt_bytes,
        deterministic=deterministic,
        confirmations=confirmations,
        max_fee_cap=int(cap * GWEI),
        networks_file=settings.networks_path,
        replace=force,
        on_start=starting,
    )
    data = done.to_dict()
    if json_out:
        print_json(data)
        return
    how = "CREATE2, same address on every chain" if done.result.deterministic else "plain CREATE"
    out.print(
        f"IsccRegistry at [bold]{data['address']}[/bold] on {done.network.name} "
        f"(block {data['block']}, {how})",
        highlight=False,
    )
    if data["explorer"]:
        out.print(f"  {data['explorer']}", highlight=False, soft_wrap=True)
    out.print(f"LicenceRegistry at [bold]{data['licences']}[/bold]", highlight=False)
    out.print(f"  deployment file {done.deployment_file}", highlight=False)
    out.print(
        f"  verification material {done.verification} ({len(done.files)} files)", highlight=False
    )


@app.command()
def networks(json_out: JsonOpt = False) -> None:
    """List the known networks: built in, and added in ISCC_REGISTRY_NETWORKS_FILE."""
    from rich.table import Table

    from registry.chain.networks import load_networks

    table = load_networks(get_settings().networks_path)
    if json_out:
        print_json([n.to_dict() for n in table.values()])
        return
    view = Table("chain id", "name", "confirmations", "block time", "explorer")
    for n in table.values():
        explorer = n.address_url.split("/address/")[0] if n.address_url else ""
        view.add_row(str(n.chain_id), n.name, str(n.confirmations), f"{n.block_time:g} s", explorer)
    out.print(view)
