"""Copy ABI and bytecode of the compiled contracts from Hardhat's artifacts into the package,
with the verification material: the standard JSON input (the sources the contract needs, the
compiler settings) and the metadata, as Sourcify and Etherscan-style explorers take them.

The Python package ships these so it can deploy and talk to the registry without Node; a test
compiles afresh and fails if the shipped copy is stale. Run after `npx hardhat compile`.
Hardhat does not ask solc for the metadata, so this compiles the standard input once more with
the npm solc and checks that the bytecode is Hardhat's.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ["IsccRegistry", "LicenceRegistry"]

# solc-js reads the standard JSON on stdin; node is the npm package `node` (>= 22).
_SOLCJS = """
const solc = require("solc");
let text = "";
process.stdin.on("data", (d) => (text += d));
process.stdin.on("end", () => process.stdout.write(solc.compile(text)));
"""


def compile_standard(standard_input: dict) -> dict:
    node = ROOT / "node_modules" / ".bin" / "node"
    done = subprocess.run(
        [str(node), "-e", _SOLCJS],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return json.loads(done.stdout)


def verification(artifact: dict) -> dict:
    """The material to verify one contract with, taken from the build Hardhat made."""
    build = json.loads(
        (ROOT / "artifacts" / "build-info" / f"{artifact['buildInfoId']}.json").read_text()
    )
    source = artifact["inputSourceName"]
    name = artifact["contractName"]
    settings = dict(build["input"]["settings"])
    settings["outputSelection"] = {source: {name: ["metadata", "evm.bytecode.object"]}}
    full = {**build["input"], "settings": settings}
    compiled = compile_standard(full)
    errors = [e for e in compiled.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise SystemExit(f"solc-js failed: {errors[0]['formattedMessage']}")
    out = compiled["contracts"][source][name]
    if "0x" + out["evm"]["bytecode"]["object"] != artifact["bytecode"]:
        raise SystemExit("solc-js and Hardhat compiled different bytecode: not exporting")
    metadata = out["metadata"]
    # Only the sources the contract is built from: what the metadata lists and hashes.
    needed = json.loads(metadata)["sources"]
    standard_input = {
        "language": build["input"]["language"],
        "sources": {k: v for k, v in build["input"]["sources"].items() if k in needed},
        "settings": {k: v for k, v in build["input"]["settings"].items() if k != "outputSelection"}
        | {"outputSelection": {"*": {"*": ["abi", "evm.bytecode", "metadata"]}}},
    }
    return {
        "fullyQualifiedName": f"{source}:{name}",
        "solcLongVersion": build["solcLongVersion"],
        "input": standard_input,
        "metadata": metadata,
    }


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
        material = target.with_name(f"{name}.verify.json")
        material.write_text(json.dumps(verification(artifact), indent=1) + "\n")
        print(f"wrote {material.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
