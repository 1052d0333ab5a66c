"""Shared fixtures: a real Hardhat devnet for the session, fresh registries and funded keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.chain.devnet import Devnet, deploy_registry, dev_account, free_port
from registry.config import PROJECT_ROOT

# Store fixtures (SQLite and a real PostgreSQL server) for every test folder.
pytest_plugins = ("stores",)


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """One Hardhat node for the whole session, on a free port, stopped at the end."""
    net = Devnet(tmp_path_factory.mktemp("devnet-home"), free_port(), PROJECT_ROOT)
    net.start()
    yield net
    net.stop()


@pytest.fixture
def deployment(devnet: Devnet) -> Deployment:
    """A freshly deployed registry per test, so tests never see each other's declarations."""
    registry = Registry.open(Deployment.load(devnet.deployment_path))
    return deploy_registry(registry.w3, dev_account(0))


@pytest.fixture
def registry(deployment: Deployment) -> Registry:
    return Registry.open(deployment)


@pytest.fixture
def payer() -> LocalAccount:
    """A funded devnet account that submits relayed declarations."""
    return dev_account(1)


@pytest.fixture
def declarer() -> LocalAccount:
    """A fresh key with no funds: it only signs."""
    return Account.create()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"
