"""Declarer keys on disk: encrypted Ethereum keystore (V3) files, or plain hex for devnet keys."""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from registry.errors import KeyFileError


def create_key_file(path: Path, password: str | None) -> LocalAccount:
    """Write a new key: a V3 keystore when a password is given, else 0x-hex (devnet use only)."""
    if path.exists():
        raise KeyFileError(f"{path} exists already; refusing to overwrite a key")
    account = Account.create()
    if password:
        content = json.dumps(Account.encrypt(account.key, password))
    else:
        content = "0x" + account.key.hex() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    # The key file is created private from the start, never world-readable for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    return account


_NOT_A_KEY = "is not a key file (expected a V3 keystore or 0x + 64 hex digits)"


def _read_key_text(path: Path) -> str:
    if path.exists() and not path.is_file():
        # A device such as /dev/urandom would be read forever.
        raise KeyFileError(f"{path} is not a regular file")
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise KeyFileError(f"key file not found: {path}") from None
    except UnicodeDecodeError:
        # A photo or any other binary file given as --key by mistake.
        raise KeyFileError(f"{path} {_NOT_A_KEY}") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from None


def key_file_address(path: Path) -> str:
    """The address of a key file, without its password (a V3 keystore names it in clear)."""
    text = _read_key_text(path)
    if not text.startswith("{"):
        return load_key_file(path).address
    try:
        address = json.loads(text)["address"]
        return to_checksum_address("0x" + address.removeprefix("0x"))
    except (ValueError, KeyError, AttributeError, TypeError):
        raise KeyFileError(f"{path} is not a V3 keystore") from None


def load_key_file(path: Path, password: str | None = None) -> LocalAccount:
    """Read a key file written by `create_key_file` (or any V3 keystore / 0x-hex key file)."""
    text = _read_key_text(path)
    if text.startswith("{"):
        try:
            keystore = json.loads(text)
        except ValueError:
            raise KeyFileError(f"{path} is neither a keystore nor a hex key") from None
        if password is None:
            raise KeyFileError(
                f"{path} is encrypted: give its password (--password-file or "
                "ISCC_REGISTRY_KEY_PASSWORD)"
            )
        try:
            return Account.from_key(Account.decrypt(keystore, password))
        except ValueError as exc:
            if "MAC mismatch" in str(exc):
                raise KeyFileError(f"wrong password for {path}") from None
            raise KeyFileError(f"cannot decrypt {path}: {exc}") from None
    try:
        return Account.from_key(text)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path} {_NOT_A_KEY}") from None
