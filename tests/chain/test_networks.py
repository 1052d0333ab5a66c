"""The table of known networks and the users' additions to it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from registry.chain.deployment import Deployment
from registry.chain.networks import BUILTIN, UNKNOWN_CONFIRMATIONS, load_networks, network_for
from registry.errors import InputError

CLI = str(Path(sys.executable).parent / "iscc-registry")


def test_builtin_networks_have_distinct_ids_and_working_links() -> None:
    ids = [n.chain_id for n in BUILTIN]
    assert len(ids) == len(set(ids))
    sepolia = network_for(11155111)
    assert sepolia.name == "Sepolia testnet" and sepolia.confirmations > 0
    assert sepolia.block_time == 12
    assert sepolia.tx_link("0xab") == "https://sepolia.etherscan.io/tx/0xab"
    assert sepolia.address_link("0xcd") == "https://sepolia.etherscan.io/address/0xcd"
    devnet = network_for(31337)
    assert devnet.confirmations == 0 and devnet.tx_link("0xab") is None


def test_an_unknown_chain_gets_conservative_guesses() -> None:
    unknown = network_for(987654321)
    assert not unknown.known and unknown.confirmations == UNKNOWN_CONFIRMATIONS
    assert unknown.name == "chain 987654321"


def test_users_add_and_override_networks(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text(
        '[[network]]\nchain_id = 123456\nname = "Our rollup"\n'
        'explorer = "https://explorer.example.org/"\nconfirmations = 4\nblock_time = 2.0\n'
        "[[network]]\nchain_id = 1\nconfirmations = 64\n"
        '[[network]]\nchain_id = 31337\ntx_url = "http://localhost:5100/tx/{hash}"\n'
    )
    table = load_networks(path)
    ours = table[123456]
    assert (ours.name, ours.confirmations, ours.block_time) == ("Our rollup", 4, 2.0)
    assert ours.block_link(7) == "https://explorer.example.org/block/7"
    assert table[1].confirmations == 64 and table[1].name == "Ethereum"  # the rest kept
    assert table[1].tx_link("0x1") == "https://etherscan.io/tx/0x1"
    assert table[31337].tx_link("0x2") == "http://localhost:5100/tx/0x2"
    assert network_for(123456, path) == ours


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[network]]\nname = "x"\n', "needs chain_id"),
        ("[[network]]\nchain_id = 5\n", "needs name"),
        ('[[network]]\nchain_id = "five"\nname = "x"\n', "chain_id must be a number"),
        ('[[network]]\nchain_id = 5\nname = "x"\ncolour = 1\n', "unknown field(s) colour"),
        ('[[network]]\nchain_id = 5\nname = "x"\nconfirmations = -1\n', "must not be negative"),
        ("network = 3\n", "expected [[network]] tables"),
        ("[[network\n", "cannot read networks file"),
    ],
)
def test_a_bad_networks_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "networks.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)):
        load_networks(path)


def test_networks_command_lists_the_users_networks_too(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "networks.toml").write_text('[[network]]\nchain_id = 424242\nname = "Ours"\n')
    env = {"ISCC_REGISTRY_HOME": str(home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [CLI, "networks", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert '"Ours"' in done.stdout and '"Sepolia testnet"' in done.stdout
    (home / "networks.toml").write_text("[[network]]\nchain_id = 1\nbogus = 2\n")
    bad = subprocess.run([CLI, "networks"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "unknown field(s) bogus" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.chain
def test_declare_links_the_transaction_on_the_networks_explorer(
    home: Path, deployment: Deployment, tmp_path: Path
) -> None:
    deployment.save(home / "deployment.json")
    (home / "networks.toml").write_text(
        '[[network]]\nchain_id = 31337\nname = "Our devnet"\n'
        'tx_url = "https://explorer.test/tx/{hash}"\n'
    )
    env = {**os.environ, "ISCC_REGISTRY_HOME": str(home)}
    work = tmp_path / "letter.txt"
    work.write_text("A letter to the registry, for the explorer link. " * 20)
    subprocess.run([CLI, "keys", "new", "carol"], env=env, check=True, capture_output=True)
    done = subprocess.run(
        [CLI, "declare", str(work), "--key", "carol"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    tx_hash = next(line.split()[1] for line in done.stdout.splitlines() if "  tx " in line)
    assert f"Our devnet: https://explorer.test/tx/{tx_hash}" in done.stdout
