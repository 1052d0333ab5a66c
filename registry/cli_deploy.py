"""`iscc-registry deploy` and `iscc-registry networks`: thin commands over registry.chain.deploy
and registry.chain.networks (kept apart from cli.py so that they move with it as a unit)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["deploy", "networks"]


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
    password_file: Annotated[
        Path | None,
        typer.Option(help="File holding the keystore password (else ISCC_REGISTRY_KEY_PASSWORD)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Deploy the registry to any EVM chain, write the deployment file and the material to
    verify the contract on a block explorer."""
    from registry.chain.contract import connect
    from registry.chain.deploy import deploy as deploy_registry
    from registry.chain.deploy import write_verification
    from registry.chain.networks import network_for
    from registry.chain.sender import GWEI, FeePolicy
    from registry.cli import _load_key, _print_json, err, out
    from registry.config import get_settings
    from registry.errors import InputError

    settings = get_settings()
    target = out_file or settings.deployment_path
    if target.exists() and not force:
        raise InputError(f"{target} exists: pass --force to replace it, or --out another file")
    try:
        salt_bytes = bytes.fromhex(salt.removeprefix("0x"))
    except ValueError:
        raise InputError(f"--salt is not hex: {salt}") from None
    account = _load_key(settings, key, password_file)
    w3 = connect(rpc)
    network = network_for(int(w3.eth.chain_id), settings.networks_path)
    cap = max_fee_gwei if max_fee_gwei is not None else settings.relayer_max_fee_gwei
    if cap <= 0:
        raise InputError("--max-fee-gwei must be positive")
    if not json_out:
        err.print(f"deploying to {network.name} (chain {network.chain_id}) from {account.address}")
    result = deploy_registry(
        w3,
        account,
        realm,
        hub_id,
        rpc_url=rpc,
        salt=salt_bytes,
        deterministic=deterministic,
        confirmations=network.confirmations if confirmations is None else confirmations,
        policy=FeePolicy(max_fee_cap=int(cap * GWEI)),
    )
    result.deployment.save(target)
    folder = target.parent / "verification" / f"{network.chain_id}-{result.deployment.address}"
    written = write_verification(result, folder)
    data = asdict(result.deployment) | {
        "network": network.name,
        "deterministic": result.deterministic,
        "deployment_file": str(target),
        "verification": str(folder),
        "explorer": network.address_link(result.deployment.address),
    }
    if json_out:
        _print_json(data)
        return
    how = "CREATE2, same address on every chain" if result.deterministic else "plain CREATE"
    out.print(
        f"IsccRegistry at [bold]{result.deployment.address}[/bold] on {network.name} "
        f"(block {result.deployment.block}, {how})",
        highlight=False,
    )
    if data["explorer"]:
        out.print(f"  {data['explorer']}", highlight=False)
    out.print(f"  deployment file {target}", highlight=False)
    out.print(f"  verification material {folder} ({len(written)} files)", highlight=False)


def networks(
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List the known networks: built in, and added in ISCC_REGISTRY_NETWORKS_FILE."""
    from rich.table import Table

    from registry.chain.networks import load_networks
    from registry.cli import _print_json, out
    from registry.config import get_settings

    table = load_networks(get_settings().networks_path)
    if json_out:
        _print_json([n.to_dict() for n in table.values()])
        return
    view = Table("chain id", "name", "confirmations", "block time", "explorer")
    for n in table.values():
        explorer = n.address_url.split("/address/")[0] if n.address_url else ""
        view.add_row(str(n.chain_id), n.name, str(n.confirmations), f"{n.block_time:g} s", explorer)
    out.print(view)
