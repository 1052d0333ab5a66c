"""What every command shares: the Typer apps, the consoles, common options, and opening keys,
the registry and the store from the settings."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from registry.errors import InputError, KeyFileError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from registry.config import Settings
    from registry.store.store import Store


def _placeholder(param: Any, ctx: Any) -> str | None:
    """What a user types after an option, as --help shows it: nothing for a flag or an argument
    (its name is shown already), else the option's metavar (KEY, URL, ...) or its type in
    capitals. Typer 0.29 shows Python annotations instead ("<bool>", "<list[Path]>")."""
    if isinstance(param, typer.core.TyperArgument) or getattr(param, "is_flag", False):
        return None
    if param.metavar:
        return str(param.metavar)
    if param.type_descriptor.is_path:
        return "PATH"
    return {"int": "N", "float": "SECONDS", "str": "TEXT"}.get(param.bare_type(), "VALUE")


def _usage_name(argument: Any) -> str:
    """An argument in the usage line as man pages write it: FILE, [FILE], FILES... (Typer 0.29
    writes a required one in braces)."""
    name = argument.display_name_raw + ("..." if argument.nargs != 1 else "")
    return name if argument.required else f"[{name}]"


typer.core.TyperOption.display_type_rich = _placeholder  # type: ignore[method-assign]
typer.core.TyperArgument.display_type_rich = _placeholder  # type: ignore[method-assign]
typer.core.TyperArgument._usage_display_name = _usage_name  # type: ignore[method-assign]

# Markdown joins the lines of a docstring paragraph, which the source wraps at 100 columns;
# Rich markup would keep each break.
app = typer.Typer(
    help="Declare ISCC codes of your content on chain, index the declarations and resolve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)
keys_app = typer.Typer(
    help="Create and show declarer keys.", no_args_is_help=True, rich_markup_mode="markdown"
)
devnet_app = typer.Typer(
    help="Run a local Hardhat devnet with the registry deployed, and fund accounts on it.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
license_app = typer.Typer(
    help="Grant licences over declarations on the licence ledger, list them, terminate them.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(keys_app, name="keys")
app.add_typer(devnet_app, name="devnet")
app.add_typer(license_app, name="license")
usage_app = typer.Typer(
    help="Report uses of declared works (signed usage reports).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
cases_app = typer.Typer(
    help="Cases of licence conflicts: list them, show one, answer one.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(usage_app, name="usage")
app.add_typer(cases_app, name="cases")

# Piped output goes to programs and to grep: identifiers are never wrapped there. On a terminal
# long lines wrap where the terminal wraps them (soft_wrap), not inside a hash.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 100_000)
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
KeyOpt = Annotated[
    str,
    typer.Option(
        "--key", "-k", metavar="KEY", help="Key file path, or the name of a key in HOME/keys."
    ),
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help="File holding the keystore password (else ISCC_REGISTRY_KEY_PASSWORD).",
        readable=False,
    ),
]

DEVNET_CHAIN_ID = 31337


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data))


def key_path(settings: Settings, key: str) -> Path:
    """A key argument is a path if such a file exists, else a name under HOME/keys."""
    path = Path(key).expanduser()
    if path.exists() or os.sep in key or key.endswith((".json", ".key")):
        return path
    for suffix in (".json", ".key"):
        candidate = settings.home / "keys" / f"{key}{suffix}"
        if candidate.exists():
            return candidate
    raise KeyFileError(f"no key file {key!r} (not a path, and not in {settings.home / 'keys'})")


def read_password(password_file: Path | None) -> str | None:
    """The keystore password from --password-file or the environment; a password file that is
    empty is an error, never a silent "no password" (which would store a key unencrypted)."""
    if password_file is None:
        return os.environ.get("ISCC_REGISTRY_KEY_PASSWORD")
    try:
        password = read_text(password_file, "a password file").rstrip("\n")
    except InputError as exc:
        raise KeyFileError(str(exc)) from None
    if not password:
        raise KeyFileError(f"the password file {password_file} is empty")
    return password


def load_key(settings: Settings, key: str, password_file: Path | None) -> LocalAccount:
    from registry.chain.keys import load_key_file

    return load_key_file(key_path(settings, key), read_password(password_file))


def payer_account(
    settings: Settings, chain_id: int, payer: str | None, password_file: Path | None
) -> LocalAccount:
    from registry.chain.devnet import dev_account

    if payer:
        return load_key(settings, payer, password_file)
    if chain_id == DEVNET_CHAIN_ID:
        return dev_account(1)
    raise InputError("--payer KEY is required on this chain (only the devnet has a built-in payer)")


def open_registry(settings: Settings):
    """The registry of the deployment file; its transactions wait for the network's
    confirmations (networks.toml included)."""
    from registry.chain.contract import Registry
    from registry.chain.deployment import Deployment
    from registry.chain.networks import network_for

    deployment = Deployment.load(settings.deployment_path)
    network = network_for(deployment.chain_id, settings.networks_path)
    return Registry.open(deployment, settings.rpc_url, network.confirmations)


def read_text(path: Path, what: str = "a text file") -> str:
    """A small text file the user named (a signed declaration, a password file)."""
    if path.exists() and not path.is_file():
        raise InputError(f"{path} is not a regular file")
    try:
        return path.read_text()
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not {what}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def get_settings() -> Settings:
    """The settings, loaded when a command runs: pydantic would add ~0.15 s to every start."""
    from registry.config import get_settings as load

    return load()


def open_store(settings: Settings, create: bool = True) -> Store:
    """The store of the settings; read-only commands pass create=False, so they never leave an
    empty store behind."""
    from registry.store.store import Store

    return Store.open(settings.database_url, create=create)
