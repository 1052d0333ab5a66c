"""`keys new` and `keys show`: declarer keys in HOME/keys."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from registry.cli.common import (
    JsonOpt,
    PasswordFileOpt,
    err,
    key_path,
    keys_app,
    load_key,
    out,
    print_json,
    read_password,
)
from registry.config import get_settings
from registry.errors import KeyFileError


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
    password = read_password(password_file)
    path = settings.home / "keys" / f"{name}{'.json' if password else '.key'}"
    account = create_key_file(path, password)
    if json_out:
        print_json({"address": account.address, "path": str(path), "encrypted": bool(password)})
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
    path = key_path(settings, key)
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
        address = load_key(settings, key, None).address
    if json_out:
        print_json({"address": address, "path": str(path)})
    else:
        out.print(f"[bold]{address}[/bold]  {path}")
