"""Compile the settlement contracts (and the mock Chainlink aggregator the feeds are tested
against) with solc-js from node_modules into settlement/artifacts/.

``python -m settlement.compile`` rewrites the artifacts; ``--check`` recompiles into memory and
exits 1 if a committed artifact differs. Nothing is downloaded: solc-js (the npm package
``solc``, a wasm build) and ``@openzeppelin/contracts`` come from ``npm ci``. The output is
deterministic: fixed source unit names, settings and JSON layout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "settlement" / "contracts"
ARTIFACTS_DIR = REPO_ROOT / "settlement" / "artifacts"
NODE_MODULES = REPO_ROOT / "node_modules"

CONTRACTS = ("SettlementVault", "TestToken", "MockRebasingToken", "MockAggregator")

# Cancun runs on both py-evm (eth-tester) and anvil; the optimizer favours runtime gas.
SETTINGS = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 10000},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}

# Runs solc-js on the standard-JSON input read from stdin; imports resolve in node_modules.
_NODE_DRIVER = r"""
const fs = require('fs');
const path = require('path');
const solc = require('solc');
const input = fs.readFileSync(0, 'utf8');
function findImports(name) {
  const file = path.join(process.cwd(), 'node_modules', name);
  try { return { contents: fs.readFileSync(file, 'utf8') }; }
  catch (err) { return { error: 'not found: ' + name }; }
}
const output = JSON.parse(solc.compile(input, { import: findImports }));
output.compilerVersion = solc.version();
process.stdout.write(JSON.stringify(output));
"""


class CompileError(RuntimeError):
    """solc reported errors, or node / solc-js is missing."""


def node_available() -> bool:
    """Whether node and the npm packages the compiler needs are installed."""
    return shutil.which("node") is not None and (NODE_MODULES / "solc").is_dir() and (
        NODE_MODULES / "@openzeppelin" / "contracts").is_dir()


def standard_input() -> dict:
    """The solc standard-JSON input for every contract in settlement/contracts/."""
    sources = {
        f"settlement/contracts/{path.name}": {"content": path.read_text()}
        for path in sorted(CONTRACTS_DIR.glob("*.sol"))
    }
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def compile_contracts() -> dict[str, str]:
    """Compile and return {artifact file name: JSON text} for every contract in CONTRACTS."""
    if not node_available():
        raise CompileError("node, node_modules/solc or node_modules/@openzeppelin/contracts missing: run `npm ci`")
    try:
        run = subprocess.run(["node", "-e", _NODE_DRIVER], input=json.dumps(standard_input()),
                             capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    except subprocess.CalledProcessError as err:
        raise CompileError(f"solc-js failed: {err.stderr.strip()}") from err
    output = json.loads(run.stdout)
    errors = [e for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise CompileError("\n".join(e["formattedMessage"] for e in errors))
    by_name = {name: (unit, contract) for unit, contracts in output["contracts"].items()
               for name, contract in contracts.items()}
    artifacts = {}
    for name in CONTRACTS:
        unit, contract = by_name[name]
        artifact = {
            "contractName": name,
            "sourceName": unit,
            "abi": contract["abi"],
            "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
            "compiler": {"name": "solc-js", "version": output["compilerVersion"]},
            "settings": SETTINGS,
        }
        artifacts[f"{name}.json"] = json.dumps(artifact, indent=1, sort_keys=True) + "\n"
    return artifacts


def stale_artifacts(artifacts: dict[str, str]) -> list[str]:
    """Names of committed artifact files that differ from `artifacts` (or are missing)."""
    return [name for name, text in artifacts.items()
            if not (ARTIFACTS_DIR / name).is_file() or (ARTIFACTS_DIR / name).read_text() != text]


def main(argv: list[str] | None = None) -> int:
    """Write the artifacts, or with --check compare them with a fresh compile."""
    parser = argparse.ArgumentParser(prog="python -m settlement.compile", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed artifacts are stale")
    args = parser.parse_args(argv)
    artifacts = compile_contracts()
    if args.check:
        stale = stale_artifacts(artifacts)
        for name in stale:
            print(f"stale: settlement/artifacts/{name}")
        return 1 if stale else 0
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    for name, text in artifacts.items():
        (ARTIFACTS_DIR / name).write_text(text)
        print(f"wrote settlement/artifacts/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
