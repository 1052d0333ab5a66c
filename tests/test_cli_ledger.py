"""`license list`, `usage report` and `cases list|show|respond` as a user runs them (a real
process), over a store holding grants, a declared work and a case; on SQLite and PostgreSQL.
Bad input: one `error:` line and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ledger_data
import pytest
from ledger_data import CHAIN, CONTRACT, GRANTOR, KEYS, LICENCES, LICENSEE, RIVAL, WORK, Ledger

from registry.api import create_app
from registry.chain.deployment import Deployment
from registry.chain.devnet import free_port
from registry.config import Settings
from registry.ledger import cases
from registry.store.store import Store

CLI = str(Path(sys.executable).parent / "iscc-registry")


def run(home: Path, db_url: str, *args: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "ISCC_REGISTRY_HOME": str(home), "ISCC_REGISTRY_DB_URL": db_url}
    environ.pop("ISCC_REGISTRY_KEY_PASSWORD", None)
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=environ, timeout=300)


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


class Home:
    def __init__(self, path: Path, db_url: str, clash: Ledger, work: str, item: dict) -> None:
        self.path, self.db_url, self.clash, self.work, self.item = path, db_url, clash, work, item

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return run(self.path, self.db_url, *args)


@pytest.fixture
def home(tmp_path: Path, db_url: str) -> Home:
    path = tmp_path / "home"
    Deployment(CHAIN, CONTRACT, 0, "http://127.0.0.1:1", 0, 0, licences=LICENCES).save(
        path / "deployment.json"
    )
    for name, account in KEYS.items():
        key = path / "keys" / f"{name}.key"
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_text("0x" + account.key.hex() + "\n")
    with Store.open(db_url) as store:
        clash = ledger_data.exclusive_clash(store)
        work, item = ledger_data.declare_work(store, b"a film for the command line " * 80, GRANTOR)
    return Home(path, db_url, clash, work, item)


def test_license_list_shows_a_readable_table(home: Home) -> None:
    proc = home("license", "list", WORK)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for words in (
        "2 licence(s) over",
        "licensee",
        "territories",
        "sublicensable",
        LICENSEE,
        "public",
        "AT, DE",
        "World",
        "SVOD, AVOD",
        "2025-01-01 to 2030-01-01",
        "from 2025-01-01",
        "active",
        "in conflict: exclusive_overlap",
        home.clash.exclusive.grant_id,
    ):
        assert words in text, words
    as_json = json.loads(home("license", "list", WORK, "--json").stdout)
    assert [entry["grant_id"] for entry in as_json["licences"]] == [
        home.clash.exclusive.grant_id,
        home.clash.rival.grant_id,
    ]
    assert [entry["exclusive"] for entry in as_json["licences"]] == [True, False]


def test_license_list_of_an_unlicensed_work_and_of_nonsense(home: Home) -> None:
    proc = home("license", "list", home.work)
    assert proc.returncode == 0 and "no licence granted over" in proc.stdout
    assert_clean_error(home("license", "list", "not-an-iscc-id"), "not an ISCC")


def test_usage_report_signs_records_and_answers(home: Home, tmp_path: Path) -> None:
    used = tmp_path / "used.bin"
    used.write_bytes(b"a film for the command line " * 80)
    proc = home(
        "usage", "report", str(used), "--territory", "de", "--use", "svod",
        "--date", "2026-03-01", "--key", "licensee",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"work: {home.work} (matched by datahash)" in proc.stdout
    assert "not licensed" in proc.stdout and "svod of" in proc.stdout
    with Store.open(home.db_url) as store:
        (report,) = store.usage_reports_of(iscc_id=home.work)
    assert (report.reporter, report.territory, report.used_at) == (LICENSEE, "DE", 1_772_323_200)
    # The same nonce twice: refused, nothing more stored.
    args = ("--territory", "DE", "--use", "svod", "--key", "licensee", "--nonce", "77")
    again = [home("usage", "report", str(used), *args, "--json") for _ in range(2)]
    assert again[0].returncode == 0 and json.loads(again[0].stdout)["licensed"] is False
    assert_clean_error(again[1], "nonce 77")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--territory", "XX", "--use", "svod"], "unknown territory"),
        (["--territory", "DE", "--use", "telepathy"], "unknown use"),
        (["--territory", "DE", "--use", "svod", "--date", "yesterday"], "not a date"),
        (["--territory", "DE", "--use", "svod", "--key", "nobody"], "no key file"),
    ],
)
def test_bad_usage_reports_are_one_line(
    home: Home, tmp_path: Path, args: list[str], words: str
) -> None:
    used = tmp_path / "used.bin"
    used.write_bytes(b"x" * 100)
    key = [] if "--key" in args else ["--key", "licensee"]
    assert_clean_error(home("usage", "report", str(used), *args, *key), words)
    with Store.open(home.db_url) as store:
        assert store.usage_reports_of(reporter=LICENSEE) == []


def test_usage_report_of_a_missing_file(home: Home, tmp_path: Path) -> None:
    proc = home(
        "usage", "report", str(tmp_path / "nope.mp4"), "--territory", "DE", "--use", "svod",
        "--key", "licensee",
    )  # fmt: skip
    assert_clean_error(proc, "nope.mp4")


def test_cases_list_show_and_respond(home: Home) -> None:
    case_id = home.clash.case_id
    listed = home("cases", "list")
    assert listed.returncode == 0, listed.stderr
    assert case_id in listed.stdout and "exclusive_overlap" in listed.stdout
    assert "open" in listed.stdout and f"{RIVAL} (grantor)" in listed.stdout
    assert json.loads(home("cases", "list", "--state", "resolved", "--json").stdout) == []
    mine = json.loads(home("cases", "list", "--party", LICENSEE, "--json").stdout)
    assert [c["id"] for c in mine] == [case_id]

    shown = home("cases", "show", case_id)
    assert shown.returncode == 0, shown.stderr
    assert "overlap: SVOD in AT, DE, 2025-01-01 to 2030-01-01" in shown.stdout
    assert "timeline" in shown.stdout and "exclusive_overlap found" in shown.stdout

    disputed = home(
        "cases", "respond", case_id, "--dispute", "--note", "mine came first", "--key", "rival"
    )
    assert disputed.returncode == 0, disputed.stderr
    assert "disputed" in disputed.stdout and "mine came first" in disputed.stdout
    assert f"{RIVAL} (signed)" in disputed.stdout
    waiting = home("cases", "respond", case_id, "--resolve", "--key", "grantor")
    assert waiting.returncode == 0, waiting.stderr
    assert "closes when every party has signed" in waiting.stdout
    for key in ("rival", "licensee"):
        resolved = home("cases", "respond", case_id, "--resolve", "--key", key, "--json")
    assert json.loads(resolved.stdout)["state"] == "resolved"
    with Store.open(home.db_url) as store:
        steps = cases.get_case(store, case_id)["events"]
    assert [(s["actor"], s["action"]) for s in steps] == [
        ("registry", "open"),
        (RIVAL, "dispute"),
        (GRANTOR, "resolve"),
        (RIVAL, "resolve"),
        (LICENSEE, "resolve"),
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--key", "grantor"], "exactly one of"),
        (["--acknowledge", "--dispute", "--key", "grantor"], "exactly one of"),
        (["--acknowledge", "--key", "stranger"], "not a party"),
        (["--acknowledge", "--note", "x" * 5000, "--key", "grantor"], "longer than"),
    ],
)
def test_bad_responses_are_one_line(home: Home, args: list[str], words: str) -> None:
    assert_clean_error(home("cases", "respond", home.clash.case_id, *args), words)
    with Store.open(home.db_url) as store:
        assert cases.get_case(store, home.clash.case_id)["state"] == "open"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["cases", "show", "0x1234"], "not a case id"),
        (["cases", "show", "0x" + "00" * 32], "no case"),
        (["cases", "respond", "0x" + "00" * 32, "--resolve", "--key", "grantor"], "no case"),
        (["cases", "list", "--state", "closed"], "--state must be one of"),
        (["cases", "list", "--party", "bob"], "not an Ethereum address"),
    ],
)
def test_bad_case_commands_are_one_line(home: Home, args: list[str], words: str) -> None:
    assert_clean_error(home(*args), words)


def test_a_malformed_case_id_is_named_before_a_missing_deployment(tmp_path: Path) -> None:
    proc = run(tmp_path / "empty", "sqlite://", "cases", "respond", "0x12", "--resolve", "-k", "me")
    assert_clean_error(proc, "not a case id")


@contextmanager
def _service(home: Home) -> Iterator[str]:
    """The registry service on the home's store, in this process, as `--via` reaches it."""
    import uvicorn

    settings = Settings(home=home.path, db_url=home.db_url)
    with Store.open(home.db_url) as store:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, store=store), host="127.0.0.1", port=port, log_level="warning"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            assert thread.is_alive(), "the service did not start"
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=60)


def test_usage_report_and_responses_via_a_service(home: Home, tmp_path: Path) -> None:
    used = tmp_path / "used.bin"
    used.write_bytes(b"a film for the command line " * 80)
    with _service(home) as url:
        args = ("--territory", "AT", "--use", "svod", "--key", "licensee", "--via", url)
        report = home("usage", "report", str(used), *args, "--json")
        assert report.returncode == 0, report.stderr
        assert json.loads(report.stdout)["work"] == home.work
        case_id = home.clash.case_id
        answered = home(
            "cases", "respond", case_id, "--acknowledge", "--key", "licensee", "--via", url
        )
        assert answered.returncode == 0, answered.stderr
        assert "acknowledged" in answered.stdout
        refused = home("cases", "respond", case_id, "--dispute", "--key", "stranger", "--via", url)
        assert_clean_error(refused, "refused", "not a party")
        remote = home("license", "list", WORK, "--via", url, "--json")
        assert remote.returncode == 0, remote.stderr
        local = home("license", "list", WORK, "--json")
        assert json.loads(remote.stdout) == json.loads(local.stdout)
        assert len(json.loads(remote.stdout)["licences"]) == 2
    with Store.open(home.db_url) as store:
        assert cases.get_case(store, case_id)["state"] == "acknowledged"
        assert len(store.usage_reports_of(iscc_id=home.work)) == 1


def test_review_license_list_via_stops_at_a_service_that_pages_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`license list --via` follows `truncated` with offset += len(page) and no bound: a
    service (hostile, or a buggy proxy answering the same page) that always says truncated
    keeps the CLI asking and growing its list forever. Here the fake service gives up after
    200 pages; the CLI should have stopped on its own (a cap, or a page it saw before)."""
    from registry.api.client import ServiceClient
    from registry.cli.ledger import _remote_licences

    asked: list[dict] = []

    def request(self, method, path, body=None, params=None):  # type: ignore[no-untyped-def]
        asked.append(params)
        if len(asked) > 200:
            raise AssertionError("still paging after 200 pages of the same licence")
        return 200, {"licences": [{"grant_id": "0x" + "00" * 32}], "truncated": True}

    monkeypatch.setattr(ServiceClient, "request", request)
    _remote_licences("http://service.example", "ISCC:MAIGBISBQHSAAAAA")


def test_declare_signed_via_a_service_takes_the_signers_metadata_along(
    home: Home, tmp_path: Path
) -> None:
    """`sign --license` publishes the document to the signer's store; relaying the signed
    declaration through a service later sends that document first, so the service's indexer
    reads its licence fields."""
    from registry.cli.declare import _forward_metadata
    from registry.metadata import canonicalize

    document = canonicalize({"name": "Signed film", "license": "https://example.com/l"})
    local = f"sqlite:///{tmp_path / 'signer.db'}"
    with Store.open(local) as store:
        store.put_metadata(document.digest, document.canonical)
    with _service(home) as url:
        _forward_metadata(Settings(home=tmp_path / "signer", db_url=local), document.digest, url)
        # A signer without a store of its own sends nothing and fails on nothing.
        nowhere = Settings(home=tmp_path / "none", db_url=f"sqlite:///{tmp_path / 'no.db'}")
        _forward_metadata(nowhere, document.digest, url)
    with Store.open(home.db_url) as store:
        assert store.get_metadata(document.digest) == document.canonical
