"""Copy ABI and bytecode of the compiled contracts from Hardhat's artifacts into the package.

The Python package ships these so it can deploy and talk to the registry without Node; a test
compiles afresh and fails if the shipped copy is stale. Run after `npx hardhat compile`.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ["IsccRegistry"]


def main() -> int:
    for name in CONTRACTS:
        source = ROOT / "artifacts" / "contracts" / f"{name}.sol" / f"{name}.json"
        if not source.exists():
            print(f"missing {source}: run `npx hardhat compile` first", file=sys.stderr)
            return 1
        artifact = json.loads(source.read_text())
        shipped = {
            "contractName": artifact["contractName"],
            "abi": artifact["abi"],
            "bytecode": artifact["bytecode"],
        }
        target = ROOT / "registry" / "chain" / "artifacts" / f"{name}.json"
        target.write_text(json.dumps(shipped, indent=1) + "\n")
        print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
