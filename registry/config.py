"""Settings of the registry, from environment variables (ISCC_REGISTRY_*) with laptop defaults."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from eth_utils import is_address, to_checksum_address
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.defaults import CASE_RESPONSE_DAYS, CASES_PER_WORK, DEFER_LOOKUPS_AFTER

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

    ws_url: str | None = None
    """WebSocket endpoint (ws:// or wss://) of the node: the indexer syncs as soon as it
    announces a block instead of at its next poll; unset: polling only."""

    deployment_file: Path | None = None
    """Chain id, contract address and deployment block; defaults to HOME/deployment.json."""

    db_url: str | None = None
    """SQLAlchemy URL of the index store; defaults to SQLite at HOME/registry.db."""

    confirmations: int | None = Field(None, ge=0)
    """Blocks an event must be buried under before the indexer applies it; defaults to the
    network's (registry.chain.networks: 0 on a devnet)."""

    defer_lookups_after: int = Field(DEFER_LOOKUPS_AFTER, ge=0)
    """Events a catch-up must expect before the indexer drops the lookup indexes until its end
    (0: never). Meanwhile lookups by ISCC-CODE, datahash and declarer scan the store."""

    case_response_days: int = Field(CASE_RESPONSE_DAYS, ge=1)
    """Days the parties of a licence case have to answer before an open case expires."""
    case_trusted_parties: list[str] = []
    """Addresses whose usage reports and grants open a case for every conflict they cause
    (platforms with a reporting agreement, known licensors). A JSON list in the environment."""
    cases_per_work: int = Field(CASES_PER_WORK, ge=1)
    """Active licence cases of one kind a harmed work may have that parties neither trusted
    nor owning it caused; conflicts beyond it wait, recorded, for a free slot
    (registry.ledger.case_policy)."""

    @field_validator("case_trusted_parties")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        wrong = [a for a in value if not is_address(a)]
        if wrong:
            raise ValueError(f"not an Ethereum address: {', '.join(wrong)}")
        return [to_checksum_address(a) for a in value]

    relayer_key: Path | None = None
    """Key file whose account pays for relayed requests in `serve`; on the devnet (chain 31337)
    a built-in funded account is used when unset."""

    relay_per_declarer_per_min: float = Field(30, gt=0)
    """Relayed requests per declarer (or owner) and minute, charged once its signature verified."""
    relay_per_client_per_min: float = Field(120, gt=0)
    """Relay attempts per client address and minute, valid or not (each costs node calls)."""
    relay_access: Literal["auto", "open", "tokens", "closed"] = "auto"
    """Who may have the relayer pay: `open` anyone, `tokens` holders of a relay token,
    `closed` nobody; `auto` is open on the devnet (chain 31337) and `tokens` elsewhere."""
    relay_tokens: list[str] = []
    """Sponsorship tokens (sent as `Authorization: Bearer <token>`); each has its own gas
    budget. A JSON list in the environment: ISCC_REGISTRY_RELAY_TOKENS='["..."]'."""
    relay_gas_per_hour: int = Field(200_000_000, gt=0)
    """Gas the relayer spends per hour at most, over everyone."""
    relay_gas_per_declarer_per_hour: int = Field(2_000_000, gt=0)
    """Gas the relayer spends per hour at most for one declarer (or owner)."""
    relay_gas_per_token_per_hour: int = Field(20_000_000, gt=0)
    """Gas the relayer spends per hour at most for one relay token's holder."""
    relay_waits_per_client: int = Field(8, ge=0)
    """Requests of one client address that may wait for a relay job at once; more are answered
    at once with the job's current state."""

    answer_cache: int = Field(50_000, ge=0)
    """ISCC-ID answers the service keeps in memory per process (0: none)."""
    answer_cache_mb: int = Field(256, ge=0)
    """Megabytes of ISCC-ID answers the service keeps in memory per process, at most."""
    read_threads: int = Field(4, ge=1)
    """Resolve requests a process reads the store for at once (in worker threads)."""
    health_max_lag_s: float = Field(120.0, gt=0)
    """/health says `degraded` when the index trails the chain head by more blocks than its
    confirmations and this many seconds of the network's blocks (a stopped indexer)."""
    inline_read_ms: float = Field(2.0, ge=0)
    """How long a resolve request's SQLite read may run on the event loop before it moves to
    a worker thread (0: always threads; PostgreSQL reads always use threads)."""
    read_queue: int = Field(256, ge=1)
    """Resolve requests a process admits at once, running or waiting; more get 503."""
    reads_per_client: int = Field(64, ge=1)
    """Resolve requests a process admits at once from one client address; more get 429."""

    max_upload_mb: int = Field(2048, ge=1)
    """Largest file the match endpoint accepts."""
    max_body_kb: int = Field(512, ge=1)
    """Largest request body of every other route (JSON), refused while it streams in."""
    max_header_kb: int = Field(16, ge=1)
    """Largest request line plus header block."""
    header_timeout_s: float = Field(10, gt=0)
    """Time a client has to send its request line and headers."""
    body_timeout_s: float = Field(30, gt=0)
    """Longest pause while a request body streams in (the whole body, for JSON routes)."""
    keep_alive_s: float = Field(5, gt=0)
    """Idle time after which a kept-alive connection is closed."""
    max_connections: int | None = Field(1000, ge=1)
    """Open connections and tasks at once; above it the server answers 503."""
    trusted_proxies: str = ""
    """Addresses or networks (comma-separated) whose X-Forwarded-For / X-Forwarded-Proto are
    believed; empty: none, the client address is the connection's peer."""
    cors_origins: list[str] = []
    """Origins browsers may call the API from (JSON list; ["*"] for any); empty: no CORS."""

    notes_per_client_per_min: float = Field(60, gt=0)
    """Signed notes (usage reports, case responses) one client address may post per minute,
    valid or not (each costs a signature check)."""
    notes_per_signer_per_min: float = Field(30, gt=0)
    """Signed notes accepted per signer and minute, charged once the signature verified."""
    webhook_allow_private: bool = False
    """Whether webhook URLs may point at loopback, private, link-local or other non-public
    addresses; off, so a subscriber cannot make the service probe its own network."""
    webhook_timeout_s: float = Field(10, gt=0)
    """Longest time one webhook delivery may take, connection to last byte read."""
    webhook_max_attempts: int = Field(8, ge=1, le=100)
    """Attempts per delivery before it is given up as failed."""
    webhook_backoff_s: float = Field(30, gt=0)
    """Wait before the second attempt; doubled after each failure up to the cap."""
    webhook_backoff_cap_s: float = Field(6 * 3600, gt=0)
    """Longest wait between two attempts."""
    subscriptions_per_creator: int = Field(20, ge=1)
    """Live subscriptions one client address may hold."""
    max_event_streams: int = Field(200, ge=0)
    """Server-sent-event clients served at once (GET /v1/events); more get 503."""
    event_streams_per_client: int = Field(4, ge=0)
    """Server-sent-event streams one client address may hold open at once."""

    networks_file: Path | None = None
    """TOML file of networks to add to or override the built-in table (registry.chain.networks);
    defaults to HOME/networks.toml."""

    relayer_max_fee_gwei: float = 200.0
    """Highest fee per gas (base fee plus tip) the relayer ever offers, bumps included."""

    relayer_journal: Path | None = None
    """SQLite file where the relayer writes every transaction before sending it, to settle
    them after a restart; defaults to HOME/relayer-journal.db."""

    relayer_confirmations: int | None = None
    """Blocks the relayer waits on before it reports a transaction; defaults to the network's."""

    devnet_port: int = 8545
    hardhat_dir: Path = PROJECT_ROOT

    @cached_property
    def deployment_path(self) -> Path:
        return self.deployment_file or self.home / "deployment.json"

    @cached_property
    def relayer_journal_path(self) -> Path:
        return self.relayer_journal or self.home / "relayer-journal.db"

    @cached_property
    def networks_path(self) -> Path:
        return self.networks_file or self.home / "networks.toml"

    @cached_property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'registry.db'}"


def get_settings() -> Settings:
    return Settings()
