"""Gas per declaration on a fresh Hardhat devnet, from transaction receipts.

Usage: .venv/bin/python scripts/bench_gas.py [--n 20]

Payload as in ARCHITECTURE.md: a 5-unit ISCC-CODE (42 bytes), two 32-byte hashes, a 40-char gateway.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import iscc_lib
from eth_account import Account
from rich.console import Console
from rich.table import Table

from registry.chain.contract import Registry
from registry.chain.devnet import Devnet, dev_account, free_port
from registry.chain.submit import declare_direct, prepare, submit_signed
from registry.config import PROJECT_ROOT

GATEWAY = "https://gateway.example.org/iscc/{iscc_id}"  # 40 characters


def payload(i: int) -> dict[str, str]:
    data = f"benchmark content {i} ".encode() * 200
    text = data.decode()
    instance = iscc_lib.gen_instance_code_v0(data)
    units = [
        iscc_lib.gen_meta_code_v0(f"Work {i}")["iscc"],
        iscc_lib.gen_text_code_v0(text)["iscc"],
        iscc_lib.gen_data_code_v0(data)["iscc"],
        instance["iscc"],
    ]
    meta = iscc_lib.gen_meta_code_v0(f"Work {i}")
    return {
        "iscc": iscc_lib.gen_iscc_code_v0(units)["iscc"],
        "datahash": instance["datahash"],
        "metahash": meta["metahash"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20, help="declarations per scenario")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as home:
        devnet = Devnet(Path(home), free_port(), PROJECT_ROOT)
        try:
            registry = Registry.open(devnet.start())
            relayer = dev_account(1)
            rows: dict[str, list[int]] = {
                "direct declare": [],
                "relayed, declarer's first nonce": [],
                "relayed, later nonces": [],
            }
            for i in range(args.n):
                p = payload(i)
                rows["direct declare"].append(
                    declare_direct(
                        registry, relayer, p["iscc"], p["datahash"], p["metahash"], GATEWAY
                    ).gas_used
                )
                declarer = Account.create()
                p = payload(10_000 + i)
                first = prepare(
                    registry, declarer, p["iscc"], p["datahash"], p["metahash"], GATEWAY
                )
                rows["relayed, declarer's first nonce"].append(
                    submit_signed(registry, first, relayer).gas_used
                )
                p = payload(20_000 + i)
                later = prepare(
                    registry, declarer, p["iscc"], p["datahash"], p["metahash"], GATEWAY
                )
                rows["relayed, later nonces"].append(
                    submit_signed(registry, later, relayer).gas_used
                )
        finally:
            devnet.stop()
    table = Table(
        "scenario", "n", "gas median", "min", "max", title="IsccRegistry gas per declaration"
    )
    for name, gas in rows.items():
        table.add_row(
            name, str(len(gas)), f"{statistics.median(gas):,.0f}", f"{min(gas):,}", f"{max(gas):,}"
        )
    console.print(table)


if __name__ == "__main__":
    main()
