"""`license grant --via` and `license terminate --via` against `iscc-registry serve` as a real
process: the service's relayer pays, the grantor holds no ether."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_serve import CLI, _env, served  # noqa: F401 - `served` is a fixture

from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.chain.iscc_id import IsccId

pytestmark = pytest.mark.chain


def _cli(home: Path, *args: str) -> dict:
    done = subprocess.run(
        [CLI, *args, "--json"], env=_env(home), capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_grant_and_terminate_via_the_service(
    home: Path,
    deployment: Deployment,
    served: tuple[str, subprocess.Popen],  # noqa: F811
) -> None:
    url, _proc = served
    erin = _cli(home, "keys", "new", "erin")["address"]
    work = str(IsccId((1_700_000_000_000_000 << 12) | 0, deployment.realm))
    granted = _cli(
        home, "license", "grant", "--work", work, "--key", "erin", "--public",
        "--territory", "FR,BE", "--use", "tvod", "--via", url,
    )  # fmt: skip
    assert granted["grantor"] == erin and granted["licensee"] is None
    assert granted["terms"]["territories"] == {"worldwide": False, "codes": ["BE", "FR"]}
    registry = Registry.open(Deployment.load(home / "deployment.json"))
    grant_id = bytes.fromhex(granted["grant_id"][2:])
    assert registry.licences.functions.grantorOf(grant_id).call() == erin
    assert registry.w3.eth.get_balance(erin) == 0
    ended = _cli(home, "license", "terminate", granted["grant_id"], "--key", "erin", "--via", url)
    assert ended["terminated_by"] == erin
    assert registry.licences.functions.isTerminated(grant_id).call()
