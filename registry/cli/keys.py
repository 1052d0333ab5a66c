"""`keys new` and `keys show`: declarer keys in HOME/keys."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from registry.cli.common import (
    JsonOpt,
    PasswordFileOpt,
    err,
    get_settings,
    key_path,
    keys_app,
    out,
    print_json,
    read_password,
)
from registry.errors import KeyFileError

# Names stay inside HOME/keys: no separators, no leading dot ("..", hidden files), not empty.
_KEY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")


@keys_app.command("new")
def keys_new(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="Name of the key; stored as HOME/keys/NAME.json or .key"
        ),
    ],
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a new declarer key: an encrypted keystore if a password is given, else plain hex."""
    from registry.chain.keys import create_key_file

    if not _KEY_NAME.fullmatch(name):
        raise KeyFileError(
            f"a key name is letters, digits, '.', '_' and '-', not starting with '.': {name!r}"
        )
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
    key: Annotated[str, typer.Argument(metavar="KEY", help="Key file or key name")],
    json_out: JsonOpt = False,
) -> None:
    """Show the address of a key (encrypted keystores show it without the password)."""
    from registry.chain.keys import key_file_address

    path = key_path(get_settings(), key)
    address = key_file_address(path)
    if json_out:
        print_json({"address": address, "path": str(path)})
    else:
        out.print(f"[bold]{address}[/bold]  {path}")
