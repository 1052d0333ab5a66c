"""`devnet start|stop|status`, `serve` and `demo`: running things."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from registry.cli.common import (
    DEVNET_CHAIN_ID,
    JsonOpt,
    app,
    devnet_app,
    err,
    get_settings,
    key_path,
    open_registry,
    open_store,
    out,
    print_json,
)
from registry.errors import InputError

if TYPE_CHECKING:
    from registry.config import Settings


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

        print_json(asdict(deployment))
    else:
        out.print(
            f"devnet up at {deployment.rpc_url}: chain {deployment.chain_id}, "
            f"IsccRegistry at {deployment.address} (block {deployment.block})"
        )


@devnet_app.command("fund")
def devnet_fund(
    who: Annotated[
        str, typer.Argument(metavar="ADDRESS_OR_KEY", help="An address, or a key file or name")
    ],
    ether: Annotated[float, typer.Option(min=0, metavar="ETHER", help="The new balance")] = 10.0,
    json_out: JsonOpt = False,
) -> None:
    """Give an account devnet ether, so it can pay for its own transactions (--direct)."""
    from eth_utils import is_address, to_checksum_address

    from registry.chain.devnet import fund

    settings = get_settings()
    if is_address(who):
        address = to_checksum_address(who)
    else:
        from registry.chain.keys import key_file_address

        address = key_file_address(key_path(settings, who))
    registry = open_registry(settings)
    if registry.deployment.chain_id != DEVNET_CHAIN_ID:
        raise InputError(
            f"chain {registry.deployment.chain_id} is not a local devnet: its ether cannot be made"
        )
    balance = fund(registry.w3, address, int(ether * 10**18))
    if json_out:
        print_json({"address": address, "balance_wei": str(balance)})
    else:
        out.print(f"{address} now holds {balance / 10**18:g} devnet ether")


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

        print_json(asdict(status))
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
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address to listen on")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
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
    open_store(settings).close()  # fail here, with one line, if the store cannot be opened
    _check_address(host, port)
    err.print(f"serving on http://{host}:{port} (OpenAPI at /docs)")
    if workers > 1:
        server.run(settings, "registry.api.app:app_from_env", host, port, workers)
        return
    from registry.api import create_app

    server.run(settings, create_app(settings, follow=index), host, port)


def _check_address(host: str, port: int) -> None:
    """Refuse, in one line, an address the server could not listen on (taken, or not this
    machine's), before saying it serves there; uvicorn would report it after start-up only."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: an address in TIME_WAIT is free, one a server listens on is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


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
