"""Settings of the registry, from environment variables (ISCC_REGISTRY_*) with laptop defaults."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.defaults import DEFER_LOOKUPS_AFTER

# The repository root holds package.json and hardhat.config.js when the package runs from a
# checkout (editable install), which is the only way the devnet is started.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Where the registry keeps its state and which chain it talks to."""

    model_config = SettingsConfigDict(env_prefix="ISCC_REGISTRY_", extra="ignore")

    home: Path = Path.home() / ".iscc-registry"
    """Folder for the devnet's files, the deployment file, keys and the SQLite store."""

    rpc_url: str | None = None
    """JSON-RPC endpoint; defaults to the one written in the deployment file."""

    deployment_file: Path | None = None
    """Chain id, contract address and deployment block; defaults to HOME/deployment.json."""

    db_url: str | None = None
    """SQLAlchemy URL of the index store; defaults to SQLite at HOME/registry.db."""

    confirmations: int = 0
    """Blocks an event must be buried under before the indexer applies it."""

    defer_lookups_after: int = Field(DEFER_LOOKUPS_AFTER, ge=0)
    """Events a catch-up must expect before the indexer drops the lookup indexes until its end
    (0: never). Meanwhile lookups by ISCC-CODE, datahash and declarer scan the store."""

    relayer_key: Path | None = None
    """Key file whose account pays for relayed requests in `serve`; on the devnet (chain 31337)
    a built-in funded account is used when unset."""

    relay_per_declarer_per_min: float = 30
    relay_per_client_per_min: float = 120
    max_upload_mb: int = 2048
    """Largest file the match endpoint accepts."""

    devnet_port: int = 8545
    hardhat_dir: Path = PROJECT_ROOT

    @cached_property
    def deployment_path(self) -> Path:
        return self.deployment_file or self.home / "deployment.json"

    @cached_property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'registry.db'}"


def get_settings() -> Settings:
    return Settings()
