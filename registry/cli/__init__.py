"""The `iscc-registry` command line: thin commands over the library, human output or --json.

One module per command group (keys, gen, declare, licence, index, lookup, deploy, devnet); each
command parses its arguments, calls one library function and prints. Heavy libraries (web3,
eth-account, numpy, Pillow, PyAV) are imported inside the commands that need them, so `--help`
and `gen` start fast.
"""

from __future__ import annotations

import sys

# Importing a command module registers its commands; this order is the order of `--help`.
# isort: off
from registry.cli import gen, declare, licence, index, lookup, ledger, keys, deploy, devnet  # noqa: F401

# isort: on
from registry.cli.common import app, err
from registry.errors import RegistryError

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except RegistryError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
