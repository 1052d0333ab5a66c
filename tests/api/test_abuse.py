"""Hostile clients (issue 18): every finding reproduced against the service as it runs."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager, suppress
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from index_helpers import FULL_ABI, content, make_log

from registry.api import create_app
from registry.api import health as health_routes
from registry.api import resolve as resolve_routes
from registry.api.state import client_of
from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.chain.devnet import dev_account, free_port
from registry.chain.iscc_id import IsccId
from registry.chain.submit import declare_direct, prepare
from registry.config import Settings
from registry.errors import ChainUnavailable
from registry.index.events import EventDecoder
from registry.index.follower import Follower
from registry.iscc.generate import generate
from registry.iscc.granular import encode_simprints
from registry.metadata import canonicalize
from registry.store.connection import ReadOverBudget
from registry.store.store import Store

CLI = str(Path(sys.executable).parent / "iscc-registry")

DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


# --- a real `iscc-registry serve` process --------------------------------------------------


class Served:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/health", timeout=30) as response:
            return json.loads(response.read())


def _serve(home: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    port = free_port()
    environ = {**os.environ, "ISCC_REGISTRY_HOME": str(home), **(env or {})}
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port), *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(proc, port)
    for _ in range(300):
        try:
            served.health()
            return served
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.1)
    proc.kill()
    pytest.fail("serve did not answer /health")


@pytest.fixture
def serve(home: Path, deployment: Deployment) -> Iterator[Any]:
    """Starts `iscc-registry serve` (indexer and relayer on the devnet) with settings from the
    environment; every process started is killed at the end."""
    deployment.save(home / "deployment.json")
    started: list[Served] = []

    def start(**env: str) -> Served:
        started.append(_serve(home, env={f"ISCC_REGISTRY_{k.upper()}": v for k, v in env.items()}))
        return started[-1]

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()


@pytest.fixture
def served(serve: Any) -> Served:
    return serve()


def _connect(served: Served, timeout: float = 30) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.port), timeout=timeout)


def _status_line(sock: socket.socket) -> bytes:
    """The first line the server answers (b"" if it closed without a word)."""
    answer = b""
    while b"\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer.split(b"\r\n", 1)[0]


# --- finding 1: one deep JSON body killed the process ----------------------------------------

ENTRY_MODULES = [
    "registry.cli",
    "registry.api.app",
    "registry.index.follower",
    "registry.index.logreader",
    "registry.chain.relayer",
    "eth_account",
    "web3",
    "py_ecc",
]


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_no_entry_module_raises_the_recursion_limit(module: str) -> None:
    # A fresh interpreter per module: once imported, a module cannot show its import's effect.
    # eth_account and web3 are imported after `registry` (which every process of the project
    # imports first, the log reader workers too, as `python -m registry.index.logreader`).
    code = (
        "import sys; before = sys.getrecursionlimit(); import registry; "
        f"import {module}; print(before, sys.getrecursionlimit())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out[0] == out[1], f"{module} moved the recursion limit from {out[0]} to {out[1]}"


def test_recursion_limit_is_lowered_when_py_ecc_came_first() -> None:
    code = (
        "import sys; before = sys.getrecursionlimit(); import eth_account, registry; "
        "print(before, sys.getrecursionlimit())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out[0] == out[1]


@pytest.mark.chain
@pytest.mark.parametrize("path", ["/v1/relay/declarations", "/v1/metadata"])
def test_deeply_nested_json_is_refused_and_the_server_lives(served: Served, path: str) -> None:
    status, _headers, body = served.request(
        "POST", path, DEEP_JSON, {"content-type": "application/json"}
    )
    assert 400 <= status < 500, body[:200]
    assert "message" in json.loads(body)
    assert served.proc.poll() is None
    assert served.health()["status"] in ("ok", "degraded")


# --- an in-process server, for tests that need to look inside while it runs -----------------


class _Counting:
    """ASGI wrapper: counts requests per path as they arrive, and shrinks the worker thread
    pool, so a few requests show what 40 would do to the default pool."""

    def __init__(self, app: Any, threads: int) -> None:
        self.app = app
        self.threads = threads
        self.arrived: dict[str, int] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = self.threads
        elif scope["type"] == "http":
            self.arrived[scope["path"]] = self.arrived.get(scope["path"], 0) + 1
        await self.app(scope, receive, send)


class InProcess:
    def __init__(self, app: Any, threads: int = 40) -> None:
        import uvicorn

        self.port = free_port()
        self.app = _Counting(app, threads)
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> InProcess:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                pytest.fail("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(
                method,
                path,
                body=data,
                headers={"content-type": "application/json", **(headers or {})},
            )
            response = conn.getresponse()
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
        finally:
            conn.close()


@pytest.fixture
def work(tmp_path: Path) -> Any:
    path = tmp_path / "work.txt"
    path.write_text("Relays are paid by somebody; this text is declared through one. " * 10)
    return generate(path)


# --- finding 2: anyone could lock out any declarer ------------------------------------------


@pytest.mark.chain
def test_forged_declarations_do_not_spend_the_declarers_limit(
    settings: Settings, store: Store, registry: Registry, work: Any
) -> None:
    bob = Account.create()
    limited = settings.model_copy(update={"relay_per_declarer_per_min": 2})
    with TestClient(create_app(limited, store=store)) as client:
        for _ in range(5):
            forged = prepare(registry, Account.create(), work.iscc, work.datahash, None, "")
            body = forged.to_json() | {"declarer": bob.address}
            answer = client.post("/v1/relay/declarations", json=body)
            assert answer.status_code == 400, answer.text
        own = prepare(registry, bob, work.iscc, work.datahash, None, "")
        answer = client.post("/v1/relay/declarations", json=own.to_json())
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"]["declarer"] == bob.address
        # The limit itself still holds for Bob's own, valid requests.
        for i in range(2):
            more = prepare(registry, bob, work.iscc, work.datahash, None, f"https://e.x/{i}")
            last = client.post("/v1/relay/declarations", json=more.to_json())
        assert last.status_code == 429 and "declarer" in last.json()["message"]
        assert int(last.headers["retry-after"]) >= 1


# --- finding 3: waiting clients starved the server ------------------------------------------


@contextmanager
def _no_mining(registry: Registry) -> Iterator[None]:
    """The devnet stops mining, so a relayed transaction stays pending as on a slow chain."""
    registry.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        yield
    finally:
        registry.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        registry.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@pytest.mark.chain
def test_waiting_clients_hold_no_threads_and_are_bounded(
    settings: Settings, store: Store, registry: Registry, work: Any
) -> None:
    waits, bound = 8, 3
    app = create_app(settings.model_copy(update={"relay_waits_per_client": bound}), store=store)
    with InProcess(app, threads=4) as server, _no_mining(registry):
        signed = prepare(registry, Account.create(), work.iscc, work.datahash, None, "")
        status, job = server.request("POST", "/v1/relay/declarations?wait=0", signed.to_json())
        assert status == 202 and job["state"] == "pending"
        path = f"/v1/relay/jobs/{job['job']}"
        answers: list[tuple[int, Any]] = []

        def wait_for_job() -> None:
            answers.append(server.request("GET", path + "?wait=20"))

        waiters = [threading.Thread(target=wait_for_job) for _ in range(waits)]
        for t in waiters:
            t.start()
        while server.app.arrived.get(path, 0) < waits:
            time.sleep(0.02)
        status, _health = server.request("GET", "/health")
        answered = len(answers)
        assert status == 200
        # /health was answered while the waits within the bound still held: they took no
        # thread from it (before, it queued behind them until they timed out).
        assert answered <= waits - bound, f"/health came after {answered} of {waits} waits"
    for t in waiters:
        t.join(timeout=120)
    assert sorted(s for s, _ in answers) == [200] * bound + [202] * (waits - bound)


# --- finding 5: bodies were read whole before any size check --------------------------------


@pytest.mark.chain
@pytest.mark.parametrize("path", ["/v1/metadata", "/v1/relay/declarations", "/v1/relay/actions"])
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_oversized_bodies_are_refused_while_they_stream(
    served: Served, path: str, chunked: bool
) -> None:
    announced = 100 * 2**20
    with _connect(served) as sock:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {announced}"
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"{framing}\r\n\r\n".encode()
        )
        piece = b"[" + b"0," * 32_767 + b"0"
        # Up to 40 MiB, beyond every JSON limit (metadata documents with features: 24 MiB) and
        # far short of what was announced: the answer must come before 100 MiB were read.
        for _ in range(640):
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                break
        assert _status_line(sock).startswith(b"HTTP/1.1 413")
    assert served.health()["declarations"] == 0


# --- finding 9: slow heads and bodies, huge heads -------------------------------------------


@pytest.mark.chain
def test_health_probes_are_answered_by_the_protocol_from_the_last_check(served: Served) -> None:
    """Once the first check is done, a probe is answered as soon as its head is parsed,
    without the app: the app's latency histogram counts at most the probe that waited for the
    first check, and the answer is the app's own."""
    answers = [served.request("GET", path) for path in ("/health", "/v1/health") * 3]
    assert {status for status, _headers, _body in answers} == {200}
    assert all(json.loads(body)["status"] == "ok" for _s, _h, body in answers)
    assert all(headers["connection"] == "close" for _s, headers, _b in answers)
    metrics = served.request("GET", "/metrics")[2].decode()
    through_app = re.findall(
        r'iscc_registry_request_seconds_count\{method="GET",route="(/v1)?/health",'
        r'status="200"\} ([0-9.]+)',
        metrics,
    )
    assert sum(float(count) for _v1, count in through_app) <= 1
    # Not a GET: the app answers, with its own rules.
    assert served.request("POST", "/health")[0] == 405


def _read_to_close(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.chain
def test_health_probes_behind_a_request_on_one_connection_are_answered_in_order(
    served: Served,
) -> None:
    """Attacker review: the protocol wrote a probe's answer as soon as its head was parsed,
    ahead of the answer to a request before it on the same connection, and closed the
    connection: that request's client read the health answer as its own. Requests after a
    probe answered there are not run either (their answers could never be sent)."""
    ahead = b"GET /v1/resolve?q=not-a-code HTTP/1.1\r\nhost: x\r\n\r\n"
    probe = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
    with _connect(served) as sock:
        sock.sendall(ahead + probe)
        answers = _read_to_close(sock)
    assert answers.startswith(b"HTTP/1.1 400 ")
    assert b"HTTP/1.1 200 OK" in answers and b'"status":"ok"' in answers
    before = served.request("GET", "/metrics")[2].decode()
    with _connect(served) as sock:
        sock.sendall(probe + b"GET /v1/resolve?q=not-a-code-either HTTP/1.1\r\nhost: x\r\n\r\n")
        answers = _read_to_close(sock)
    assert answers.startswith(b"HTTP/1.1 200 OK") and answers.count(b"HTTP/1.1") == 1
    time.sleep(0.5)
    after = served.request("GET", "/metrics")[2].decode()
    count = (
        r'iscc_registry_request_seconds_count\{method="GET",route="/v1/resolve",'
        r'status="400"\} ([0-9.]+)'
    )
    assert re.findall(count, before) and re.findall(count, after) == re.findall(count, before)


@pytest.mark.chain
def test_health_probes_asking_for_an_upgrade_break_nothing(served: Served) -> None:
    """Attacker review: a probe with `Upgrade: websocket` was answered by the protocol, then
    uvicorn's upgrade handling failed on the scope it had not set: a "Fatal error on
    transport" traceback in the log per request, for anyone to send."""
    probe = (
        b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
        b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    )
    with _connect(served) as sock:
        sock.sendall(probe)
        assert _read_to_close(sock).startswith(b"HTTP/1.1 ")
    assert served.request("GET", "/health")[0] == 200
    served.proc.terminate()
    _out, err = served.proc.communicate(timeout=60)
    assert "Fatal error" not in err and "Traceback" not in err


def test_slow_heads_slow_bodies_and_huge_heads_are_cut(serve: Any) -> None:
    served = serve(header_timeout_s="1", body_timeout_s="1", max_header_kb="16")
    with _connect(served) as slow_head:
        slow_head.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        assert _status_line(slow_head).startswith(b"HTTP/1.1 408")
    with _connect(served) as slow_body:
        slow_body.sendall(
            b"POST /v1/metadata HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"a":'
        )
        assert _status_line(slow_body).startswith(b"HTTP/1.1 408")
    with _connect(served) as huge_head:
        filler = b"X-Filler: " + b"a" * 8000 + b"\r\n"
        with suppress(BrokenPipeError, ConnectionResetError):
            huge_head.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + filler * 256 + b"\r\n")
        assert _status_line(huge_head).startswith(b"HTTP/1.1 431")
    # A kept-alive connection is not cut between requests for the head timeout alone, and
    # honest requests on it still work.
    kept = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        for _ in range(2):
            kept.request("GET", "/health")
            response = kept.getresponse()
            assert response.status == 200 and json.loads(response.read())["status"]
    finally:
        kept.close()


# --- finding 4: a forwarded header chose the client address ---------------------------------


def _garbled_declaration(registry: Registry, work: Any) -> dict[str, Any]:
    body = prepare(registry, Account.create(), work.iscc, work.datahash, None, "").to_json()
    body["signature"] = "0x" + "ab" * 65
    return body


@pytest.mark.chain
def test_forwarded_headers_are_not_trusted_by_default(
    serve: Any, registry: Registry, work: Any
) -> None:
    served = serve(relay_per_client_per_min="3")
    statuses = []
    for i in range(5):
        status, _headers, _body = served.request(
            "POST",
            "/v1/relay/declarations",
            json.dumps(_garbled_declaration(registry, work)).encode(),
            {"content-type": "application/json", "x-forwarded-for": f"203.0.113.{i}"},
        )
        statuses.append(status)
    assert statuses == [400, 400, 400, 429, 429]


@pytest.mark.chain
def test_forwarded_headers_of_a_configured_proxy_are(
    serve: Any, registry: Registry, work: Any
) -> None:
    served = serve(relay_per_client_per_min="1", trusted_proxies="127.0.0.1")
    statuses = []
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.1"]:
        status, _headers, _body = served.request(
            "POST",
            "/v1/relay/declarations",
            json.dumps(_garbled_declaration(registry, work)).encode(),
            {"content-type": "application/json", "x-forwarded-for": client},
        )
        statuses.append(status)
    assert statuses == [400, 400, 429]


# --- findings 7 and 8: a directory as upload name, internals in error messages --------------


@pytest.fixture
def offline(tmp_path: Path) -> Iterator[TestClient]:
    """The API over an empty store with no chain: enough for uploads."""
    app = create_app(Settings(home=tmp_path / "offline"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("filename", ["..", "a/..", "a\\..", ".", "...", "\u202e.txt", "\u202e"])
def test_upload_names_neither_escape_nor_leak_paths(offline: TestClient, filename: str) -> None:
    answer = offline.post(
        "/v1/match", params={"filename": filename}, content=b"some bytes of a file " * 20
    )
    assert answer.status_code < 500, answer.text
    assert tempfile.gettempdir() not in answer.text and "iscc-match" not in answer.text


def test_unexpected_errors_name_no_exception(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path / "offline"))

    def broken() -> None:
        raise IsADirectoryError(21, "Is a directory", "/tmp/secret/place")

    app.add_api_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/broken")
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal", "message": "internal error"}


@pytest.mark.chain
def test_malformed_signatures_are_refused_without_parser_text(
    client: TestClient, registry: Registry, work: Any
) -> None:
    signed = prepare(registry, Account.create(), work.iscc, work.datahash, None, "").to_json()
    for signature in ["0xnothex", "0x123", "no prefix"]:
        answer = client.post("/v1/relay/declarations", json=signed | {"signature": signature})
        assert 400 <= answer.status_code < 500, answer.text
        message = answer.json()["message"]
        assert "signature" in message
        assert "Error(" not in message and "non-hexadecimal" not in message, message


# --- finding 6: anonymous writes flushed the resolve cache ----------------------------------


@pytest.mark.chain
def test_only_documents_a_declaration_names_invalidate_cached_answers(
    client: TestClient, registry: Registry, store: Store, tmp_path: Path, monkeypatch: Any
) -> None:
    document = {"name": "A letter", "creator": "Alice"}
    metahash = canonicalize(document).metahash
    path = tmp_path / "letter.txt"
    path.write_text("Dear cache, please keep what you hold. " * 20)
    work = generate(path)
    receipt = declare_direct(registry, dev_account(1), work.iscc, work.datahash, metahash, "")
    Follower(registry, store).sync()
    computed: list[str] = []
    compute = resolve_routes._iscc_id_answer

    def counted(request: Any, iscc_id: str) -> Any:
        # Answers computed, not attempts: a read on the event loop past its budget (the
        # first on a connection reads its pages cold) is attempted again in a thread.
        answer = compute(request, iscc_id)
        computed.append(iscc_id)
        return answer

    monkeypatch.setattr(resolve_routes, "_iscc_id_answer", counted)
    state = client.app.state.registry  # type: ignore[attr-defined]
    url = f"/iscc-id/{receipt.iscc_id}"

    def resolve_now() -> Any:
        # The cache compares the store's generation every GENERATION_CHECK_S; due now.
        state._generation = (0.0, state._generation[1])
        return client.get(url).json()

    assert resolve_now()["metadata"] is None
    for i in range(5):  # anybody's documents, named by no declaration
        assert client.post("/v1/metadata", json={"name": f"spam {i}"}).status_code == 201
        assert resolve_now()["metadata"] is None
    assert len(computed) == 1
    # The document the declaration names changes its answer: that one invalidates.
    assert client.post("/v1/metadata", json=document).status_code == 201
    assert resolve_now()["metadata"] == document
    assert len(computed) == 2


# --- finding 9: methods, CORS, offline docs, formats ----------------------------------------


def test_options_and_unknown_methods_say_what_is_allowed(offline: TestClient) -> None:
    options = offline.options("/v1/resolve")
    assert options.status_code == 204
    assert set(options.headers["allow"].split(", ")) >= {"GET", "OPTIONS"}
    trace = offline.request("TRACE", "/health")
    assert trace.status_code == 405 and "GET" in trace.headers["allow"]
    assert offline.options("/no/such/path").status_code == 404


def test_cors_only_when_configured(offline: TestClient, tmp_path: Path) -> None:
    origin = {"origin": "https://app.example"}
    assert "access-control-allow-origin" not in offline.get("/health", headers=origin).headers
    settings = Settings(home=tmp_path / "cors", cors_origins=["https://app.example"])
    with TestClient(create_app(settings)) as client:
        allowed = client.get("/health", headers=origin)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = client.get("/health", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = client.options(
            "/v1/relay/declarations",
            headers=origin | {"access-control-request-method": "POST"},
        )
        assert preflight.status_code == 200
        assert "POST" in preflight.headers["access-control-allow-methods"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_nothing_from_elsewhere(offline: TestClient, page: str) -> None:
    html = offline.get(page).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset}"
        served = offline.get(asset)
        assert served.status_code == 200 and len(served.content) > 1000, asset
    assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html


def test_schema_says_an_upload_may_be_unreadable(offline: TestClient) -> None:
    """A broken PDF is 415; schemathesis found the status undocumented (now and then)."""
    responses = offline.get("/openapi.json").json()["paths"]["/v1/match"]["post"]["responses"]
    assert "415" in responses
    broken = offline.post("/v1/match", params={"filename": "a.pdf"}, content=b"%PDF-")
    assert broken.status_code == 415, broken.text


def test_schema_describes_identifier_formats(offline: TestClient) -> None:
    schema = offline.get("/openapi.json").json()

    def parameter(path: str, name: str) -> dict[str, Any]:
        (found,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name]
        return found["schema"]

    assert re.fullmatch(
        parameter("/iscc-id/{iscc_id}", "iscc_id")["pattern"], "ISCC:MAIGBISBQHSAAAAA"
    )
    assert re.fullmatch(
        parameter("/v1/metadata/{metahash}", "metahash")["pattern"], "1e20" + "a" * 64
    )
    assert re.fullmatch(parameter("/v1/search", "iscc")["pattern"], "ISCC:AAAWKLHFPV6OPKDG")
    declaration = schema["components"]["schemas"]["SignedDeclarationIn"]["properties"]
    assert re.fullmatch(declaration["declarer"]["pattern"], "0x" + "ab" * 20)
    assert not re.fullmatch(declaration["signature"]["pattern"], "0xnothex")


# --- finding 4 (continued): fresh keys draining the relayer ---------------------------------


def _relay_with(settings: Settings, store: Store, **update: Any) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=update), store=store))


@pytest.mark.chain
def test_relay_tokens_and_closed_relay(
    settings: Settings, store: Store, registry: Registry, work: Any
) -> None:
    def signed() -> dict[str, Any]:
        return prepare(registry, Account.create(), work.iscc, work.datahash, None, "").to_json()

    with _relay_with(settings, store, relay_access="tokens", relay_tokens=["s3cret"]) as client:
        missing = client.post("/v1/relay/declarations", json=signed())
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith(
            "Bearer"
        )
        wrong = client.post(
            "/v1/relay/declarations", json=signed(), headers={"authorization": "Bearer guess"}
        )
        assert wrong.status_code == 401
        sponsored = client.post(
            "/v1/relay/declarations", json=signed(), headers={"authorization": "Bearer s3cret"}
        )
        assert sponsored.status_code == 200, sponsored.text
    with _relay_with(settings, store, relay_access="closed") as client:
        assert client.post("/v1/relay/declarations", json=signed()).status_code == 403


@pytest.mark.chain
def test_gas_budgets_bound_fresh_keys_and_each_declarer(
    settings: Settings, store: Store, registry: Registry, work: Any
) -> None:
    alice = Account.create()
    with _relay_with(settings, store, relay_gas_per_declarer_per_hour=100_000) as client:
        first = prepare(registry, alice, work.iscc, work.datahash, None, "a")
        assert client.post("/v1/relay/declarations", json=first.to_json()).status_code == 200
        second = prepare(registry, alice, work.iscc, work.datahash, None, "b")
        refused = client.post("/v1/relay/declarations", json=second.to_json())
        assert (
            refused.status_code == 429
            and "declarer's gas budget is spent" in refused.json()["message"]
        )
    # Fresh keys each have a budget of their own; the relayer's total bounds them all.
    with _relay_with(settings, store, relay_gas_per_hour=150_000) as client:
        answers = [
            client.post(
                "/v1/relay/declarations",
                json=prepare(
                    registry, Account.create(), work.iscc, work.datahash, None, ""
                ).to_json(),
            )
            for _ in range(4)
        ]
        statuses = [a.status_code for a in answers]
        assert statuses[0] == 200 and statuses[-1] == 429, statuses
        assert "relayer's gas budget is spent" in answers[-1].json()["message"]


@pytest.mark.parametrize(
    ("host", "client"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
)
def test_an_ipv6_client_is_its_64_network(host: str, client: str) -> None:
    """Every per-client limit counts an IPv6 /64 as one client: a host usually has a whole /64,
    and each of its addresses must not get its own allowance."""
    request = SimpleNamespace(client=SimpleNamespace(host=host))
    assert client_of(request) == client  # type: ignore[arg-type]


# --- admission and health under load -------------------------------------------------------


def _held_until(release: threading.Event, call: Callable[..., Any]) -> Callable[..., Any]:
    """`call`, made to wait for `release` first (30 s at most), as a store that hangs would."""

    def held(*args: Any) -> Any:
        release.wait(30)
        return call(*args)

    return held


def test_health_answers_from_its_last_check_while_the_store_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe neither waits for a store that hangs nor repeats the last good answer for long:
    it is answered from the last check, and 503 once the checks stop coming back."""
    app = create_app(Settings(home=tmp_path / "hanging"))
    store = app.state.registry.store
    release = threading.Event()
    hanging = _held_until(release, store.count)

    with TestClient(app) as client:
        assert client.get("/health").json()["status"] == "ok"
        monkeypatch.setattr(store, "count", hanging)
        try:
            assert client.get("/health").json()["declarations"] == 0
            monkeypatch.setattr(health_routes, "HEALTH_STALE_S", 0.0)
            stuck = client.get("/health")
            assert stuck.status_code == 503
            assert "has not answered" in stuck.json()["message"]
        finally:
            release.set()


def _held_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **bounds: int
) -> tuple[TestClient, threading.Event, Any]:
    """The API whose ISCC-ID reads wait for the returned event (each answers 404 then), in
    worker threads (a read held on the event loop would hold the whole process)."""
    settings = Settings(home=tmp_path / "held").model_copy(update={**bounds, "inline_read_ms": 0})
    app = create_app(settings)
    store = app.state.registry.store
    release = threading.Event()
    monkeypatch.setattr(store, "iscc_id_view", _held_until(release, store.iscc_id_view))
    return TestClient(app), release, app.state.store_reads


def _admitted(reads: Any, count: int) -> None:
    for _ in range(3000):
        if reads.admitted == count:
            return
        time.sleep(0.01)
    pytest.fail(f"{reads.admitted} reads admitted, expected {count}")


@pytest.mark.parametrize(
    ("bounds", "status"),
    [
        ({"read_threads": 1, "read_queue": 2, "reads_per_client": 10}, 503),
        ({"read_threads": 1, "read_queue": 10, "reads_per_client": 2}, 429),
    ],
    ids=["process", "client"],
)
def test_resolve_sheds_reads_beyond_its_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bounds: dict[str, int], status: int
) -> None:
    """Reads past the process's bound get 503, past a client's 429, at once and with
    Retry-After, while the admitted ones (one running, one waiting) are answered."""
    client, release, reads = _held_reads(tmp_path, monkeypatch, **bounds)
    ids = [f"/iscc-id/{IsccId((1_700_000_000_000_000 + n) << 12, 0)}" for n in range(3)]
    with client, ThreadPoolExecutor(2) as pool:
        try:
            admitted = [pool.submit(client.get, path) for path in ids[:2]]
            _admitted(reads, 2)
            refused = client.get(ids[2])
            assert refused.status_code == status
            assert refused.headers["retry-after"] == "1"
            assert client.get("/health").status_code == 200  # never queued behind reads
        finally:
            release.set()
        assert [f.result().status_code for f in admitted] == [404, 404]
        assert reads.admitted == 0 and not reads.by_client


def _where_reads_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, over_budget: int, **settings: Any
) -> tuple[TestClient, list[str]]:
    """The API, and where each ISCC-ID read ran ("loop" or "thread"); the first `over_budget`
    reads on the loop stop as a read past its budget does."""
    app = create_app(Settings(home=tmp_path / "where", **settings))
    store = app.state.registry.store
    places: list[str] = []
    view = store.iscc_id_view

    def watched(iscc_id: str) -> Any:
        try:
            asyncio.get_running_loop()
            places.append("loop")
        except RuntimeError:
            places.append("thread")
        if places[-1] == "loop" and places.count("loop") <= over_budget:
            raise ReadOverBudget("the read took longer than its budget")
        return view(iscc_id)

    monkeypatch.setattr(store, "iscc_id_view", watched)
    return TestClient(app), places


def test_short_sqlite_reads_run_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite lookup costs less than the hop to a worker thread and back, so it runs on the
    loop; one past its budget runs again in a thread and is answered the same."""
    path = f"/iscc-id/{IsccId(1_700_000_000_000_000 << 12, 0)}"
    # Only the overrun the test makes: on a busy machine the loop's first real read (it opens
    # the loop's connection) could overrun a 2 ms budget too (seen in CI).
    client, places = _where_reads_run(
        tmp_path, monkeypatch, over_budget=1, answer_cache=0, inline_read_ms=10_000
    )
    with client:
        first, second = client.get(path), client.get(path)
    assert places == ["loop", "thread", "loop"]
    assert first.status_code == second.status_code == 404
    assert first.json() == second.json()


def _declared_with(store: Store, document: dict[str, Any], block: int = 5) -> str:
    """An ISCC-ID declared in `store` (no chain) naming `document`, which is stored."""
    canonical = canonicalize(document)
    item = content(b"document %d " % block * 30)
    body = (1_700_000_000_000_000 + block) << 12
    log = make_log(
        item["raw"],
        item["digest"],
        iscc_id_body=body,
        metahash=canonical.digest,
        block_number=block,
    )
    event = EventDecoder(0, FULL_ABI).decode(log)
    store.apply(31337, "0x" + "12" * 20, [event], None, block, event.block_hash)
    store.put_metadata(canonical.digest, canonical.canonical)
    return event.iscc_id


def _features_document(segments: int) -> dict[str, Any]:
    simprints = encode_simprints(list(range(1, segments + 1)))
    features = {"kind": "video", "version": 0, "unit": "ms", "simprints": simprints}
    features |= {"offsets": list(range(0, segments * 200, 200)), "sizes": [200] * segments}
    return {"name": "A long film", "features": [features]}


def test_large_documents_are_read_and_answered_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attacker review: an ISCC-ID naming a 10 MB metadata document (granular features; one
    declaration and one upload) held the event loop for 260 to 370 ms per cold request, and
    every spelling of the ID (iscc:maig..., MAIG...) was a cold request of its own. The
    SQLite read of the document is a few steps its progress handler never stops, and parsing
    and serialising the document again ran after the read on the loop. Such an answer is
    read in a worker thread, and the document goes into it as stored."""
    client, places = _where_reads_run(tmp_path, monkeypatch, over_budget=0, answer_cache=0)
    document = _features_document(5000)  # about 100 kB, more than a plain document may be
    iscc_id = _declared_with(client.app.state.registry.store, document)  # type: ignore[attr-defined]
    with client:
        # The loop's connection is made by the first read, which may take longer than a
        # budget: warmed up by one the test does not look at.
        assert client.get(f"/iscc-id/{IsccId(1_700_000_000_000_999 << 12, 0)}").status_code == 404
        answer = client.get(f"/iscc-id/{iscc_id}")
    assert places[-2:] == ["loop", "thread"]
    assert answer.status_code == 200
    assert answer.json()["metadata"] == document
    assert answer.json()["records"][0]["iscc_id"] == iscc_id


def test_every_spelling_of_an_iscc_id_shares_one_cached_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attacker review: answers were cached under the path as given, so each spelling of an
    ISCC-ID (case, prefix, spaces: thousands of them) was a cold read, and one more cached
    copy of an answer that holds its metadata document (up to 10 MB; 50,000 entries)."""
    app = create_app(Settings(home=tmp_path / "spelled"))
    iscc_id = _declared_with(app.state.registry.store, {"name": "A letter"})
    computed: list[str] = []
    compute = resolve_routes._iscc_id_answer

    def counted(request: Any, given: str) -> Any:
        answer = compute(request, given)  # answers computed, not attempts (see above)
        computed.append(given)
        return answer

    monkeypatch.setattr(resolve_routes, "_iscc_id_answer", counted)
    bare = iscc_id.removeprefix("ISCC:")
    spellings = [iscc_id, iscc_id.lower(), bare, bare.lower(), bare[:5].lower() + bare[5:]]
    with TestClient(app) as client:
        answers = [client.get(f"/iscc-id/{spelled}") for spelled in spellings]
    assert {answer.status_code for answer in answers} == {200}
    assert all(answer.content == answers[0].content for answer in answers)
    assert len(computed) == 1
    assert len(app.state.registry._answers) == 1


def _home_of(home: Path, deployment: Deployment) -> Path:
    """A service home with this deployment file."""
    home.mkdir()
    deployment.save(home / "deployment.json")
    return home


def _opening_held_until(
    release: threading.Event, connecting: threading.Event | None = None
) -> Callable[..., Registry]:
    """`Registry.open` as against a node that does not answer until `release` (30 s at most)."""

    def held(*_args: Any, **_kwargs: Any) -> Registry:
        if connecting is not None:
            connecting.set()
        release.wait(30)
        raise ChainUnavailable("no Ethereum node answers")

    return held


_PREPARE = {
    "iscc_code": "ISCC:KEC3665PM3B4W657X5T3AF6CY3KIQDELARGNP2QA4P4TX7WNZAJ2P6A",
    "datahash": "1e20" + "f93bfecdc813a7f852e28fc71d72dfc452f03bc4060ed96976eb94f4bd2a4a1a",
    "declarer": dev_account(2).address,
}
"""A well-formed /v1/declarations/prepare body."""


def test_searches_do_not_wait_for_a_node_that_does_not_answer(
    tmp_path: Path, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connecting to the node (asked once a second by the health checks) held the lock the
    similarity and snippet indexes are loaded under, so with an unreachable node every search
    waited the node's RPC timeout."""
    home = _home_of(tmp_path / "blackholed", deployment)
    app = create_app(Settings(home=home))
    state = app.state.registry
    connecting, release = threading.Event(), threading.Event()
    monkeypatch.setattr(Registry, "open", _opening_held_until(release, connecting))
    with ThreadPoolExecutor(2) as pool:
        try:
            pool.submit(state.registry)
            assert connecting.wait(10)
            loaded = pool.submit(state.similarity)
            assert loaded.result(timeout=5) is not None
        finally:
            release.set()


def test_the_answer_cache_is_bounded_in_bytes(tmp_path: Path) -> None:
    """Attacker review: the cache was bounded only in answers (50,000), and an answer holds its
    metadata document, so one large document named by many declarations was held once per
    declaration. Answers of 100 KB in a 1 MiB cache: the oldest go first. An answer over an
    eighth of the bytes is not cached at all: eleven of 24 MiB emptied a 256 MiB cache of
    everyone else's answers (outside attacker review)."""
    app = create_app(Settings(home=tmp_path / "bytes").model_copy(update={"answer_cache_mb": 1}))
    state = app.state.registry
    large = {"body": b"x" * 100_000}
    for n in range(12):
        assert state.cached(f"k{n}", lambda: large, size=lambda a: len(a["body"])) is large
    assert list(state._answers) == [f"k{n}" for n in range(2, 12)]
    assert state._answer_bytes == 1_000_000
    assert state.peek("k11") is large and state.peek("k0") is None
    huge = {"body": b"x" * (1024 * 1024 // 8 + 1)}
    assert state.cached("huge", lambda: huge, size=lambda a: len(a["body"])) is huge
    assert state.peek("huge") is None and len(state._answers) == 10


def test_an_answer_computed_before_the_store_changed_is_not_cached_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside attacker review: an answer computed from the store as it was, inserted after
    another request had seen the store's generation move and emptied the cache, was served as
    current until the store changed again (hours, on a quiet chain)."""
    from registry.api import state as state_module

    app = create_app(Settings(home=tmp_path / "stale"))
    state = app.state.registry
    generations = iter([1, 2, 2, 2])
    monkeypatch.setattr(state.store, "generation", lambda: next(generations))
    monkeypatch.setattr(state_module, "GENERATION_CHECK_S", 0.0)

    def old_answer() -> dict[str, bytes]:
        # Meanwhile the store changes and another request sees it.
        assert state.cached("other", lambda: {"body": b"new"}, size=len) == {"body": b"new"}
        return {"body": b"from generation 1"}

    assert state.cached("key", old_answer, size=len) == {"body": b"from generation 1"}
    assert list(state._answers) == ["other"]
    assert state.cached("key", lambda: {"body": b"from generation 2"}, size=len) == {
        "body": b"from generation 2"
    }


def test_clients_holding_every_slot_with_long_reads_do_not_shut_out_short_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attacker review: a few addresses filled all 256 read slots per process with reads
    that wait, and every resolve request of everyone else got 503. Short reads, answered on
    the event loop, need no slot."""
    app = create_app(
        Settings(home=tmp_path / "slots").model_copy(
            update={"read_threads": 1, "read_queue": 2, "answer_cache": 0}
        )
    )
    store = app.state.registry.store
    release = threading.Event()
    view = store.iscc_id_view
    long_ids = {str(IsccId((1_700_000_000_000_000 + n) << 12, 0)) for n in range(2)}

    def slow_for_some(iscc_id: str) -> Any:
        if iscc_id in long_ids:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                release.wait(30)  # in its thread: it holds a slot
            else:
                raise ReadOverBudget("the read took longer than its budget")
        return view(iscc_id)

    monkeypatch.setattr(store, "iscc_id_view", slow_for_some)
    reads = app.state.store_reads
    short = f"/iscc-id/{IsccId(1_700_000_000_000_009 << 12, 0)}"
    with TestClient(app) as client, ThreadPoolExecutor(2) as pool:
        try:
            held = [pool.submit(client.get, f"/iscc-id/{i}") for i in sorted(long_ids)]
            _admitted(reads, 2)
            assert client.get(short).status_code == 404  # answered, not 503
        finally:
            release.set()
        assert [f.result().status_code for f in held] == [404, 404]


def test_reads_use_threads_when_inline_reads_are_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"/iscc-id/{IsccId(1_700_000_000_000_000 << 12, 0)}"
    client, places = _where_reads_run(
        tmp_path, monkeypatch, over_budget=0, answer_cache=0, inline_read_ms=0
    )
    with client:
        assert client.get(path).status_code == 404
    assert places == ["thread"]


def test_a_failing_node_check_does_not_end_the_node_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attacker review: the chain node's thread caught nothing around the relayer's balance;
    one error other than RegistryError ended it, and /health said "the chain node has not
    answered" for as long as the process lived, whatever the node did. The failure is the
    answer's problem now, and the next check recovers."""
    monkeypatch.setattr(health_routes, "HEALTH_CHECK_S", 0.05)
    app = create_app(Settings(home=tmp_path / "node-check"))
    state = app.state.registry
    failures = [RuntimeError("an odd answer")]

    def balance() -> Any:
        if failures:
            raise failures.pop()
        return None

    monkeypatch.setattr(state, "relayer_balance", balance)
    monitor = app.state.health
    try:
        monitor.start()
        deadline = time.monotonic() + 5
        while (failures or monitor._node is None or monitor._node.problem) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert not failures and monitor._node is not None
        assert monitor._node.problem is None and time.monotonic() - monitor._node.at < 1
    finally:
        monitor.stop()


def test_first_health_probe_of_a_hanging_store_is_answered_503_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process whose store hangs before its first probe: the probe (and every later one, two
    threads at most) waits on the store with no bound, and the background checks never start,
    so the probe never turns 503 as docs/api.md promises ("a probe never waits ... for the
    store"; "after 10 s without a completed check the probe answers 503")."""
    monkeypatch.setattr(health_routes, "HEALTH_STALE_S", 0.2)
    app = create_app(Settings(home=tmp_path / "hung-at-start"))
    store = app.state.registry.store
    release = threading.Event()
    monkeypatch.setattr(store, "count", _held_until(release, store.count))
    with TestClient(app) as client, ThreadPoolExecutor(4) as pool:
        try:
            probes = [pool.submit(client.get, "/health") for _ in range(3)]
            started = time.monotonic()
            try:
                answers = [
                    p.result(timeout=max(0.1, 3 - (time.monotonic() - started))) for p in probes
                ]
            except FutureTimeout:
                pytest.fail("/health did not answer within 3 s while the store hangs")
            assert [a.status_code for a in answers] == [503, 503, 503]
        finally:
            release.set()


@contextmanager
def _silent_node() -> Iterator[str]:
    """A node URL whose server accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_connecting_to_a_silent_node_fails_within_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attacker review: a node that accepts connections and never answers held a connecting
    caller for the RPC timeout times web3's five tries (30 s x 5); the probe now is tried once
    within CONNECT_TIMEOUT_S."""
    from registry.chain import contract

    monkeypatch.setattr(contract, "CONNECT_TIMEOUT_S", 0.5)
    with _silent_node() as url:
        started = time.monotonic()
        with pytest.raises(ChainUnavailable, match="no Ethereum node answers"):
            contract.connect(url)
        assert time.monotonic() - started < 5


def test_a_failed_connection_is_remembered_for_a_few_seconds(
    tmp_path: Path, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each caller (health thread, relays, prepares) tried the node again in turn, the others
    waiting on the connection lock a timeout each: after a failure, callers get its error at
    once for CONNECT_RETRY_S, then one tries again."""
    from registry.api import state as state_module

    home = _home_of(tmp_path / "down", deployment)
    state = create_app(Settings(home=home)).state.registry
    tries = []

    def down(*_args: Any, **_kwargs: Any) -> Registry:
        tries.append(time.monotonic())
        raise ChainUnavailable("no Ethereum node answers at there (ReadTimeout)")

    monkeypatch.setattr(Registry, "open", down)
    for _ in range(5):
        with pytest.raises(ChainUnavailable, match="no Ethereum node answers at there"):
            state.registry()
    assert len(tries) == 1
    monkeypatch.setattr(state_module, "CONNECT_RETRY_S", 0.0)
    with pytest.raises(ChainUnavailable):
        state.registry()
    assert len(tries) == 2


def test_a_prepare_does_not_hold_the_event_loop_while_the_node_is_connected_to(
    tmp_path: Path, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attacker review: /v1/declarations/prepare connected to the node on the event loop, so
    with a node that did not answer every other request waited minutes (SIGTERM too)."""
    home = _home_of(tmp_path / "prepare", deployment)
    connecting, release = threading.Event(), threading.Event()
    monkeypatch.setattr(Registry, "open", _opening_held_until(release, connecting))
    body = _PREPARE
    with TestClient(create_app(Settings(home=home))) as client, ThreadPoolExecutor(2) as pool:
        try:
            prepared = pool.submit(client.post, "/v1/declarations/prepare", json=body)
            assert connecting.wait(10)
            # An async route, answered on the event loop the prepare was started on.
            other = pool.submit(client.get, "/v1/health")
            assert other.result(timeout=5).status_code in (200, 503)
        finally:
            release.set()
        assert prepared.result(timeout=10).status_code == 503


def test_metrics_take_the_node_from_the_health_thread(
    tmp_path: Path, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attacker review: a scrape asked the node itself, in a worker thread every sync route
    shares, and with a node that did not answer waited its timeout (45 relays and scrapes used
    up the pool). It reports the health thread's last answer."""
    home = _home_of(tmp_path / "metrics", deployment)
    app = create_app(Settings(home=home))
    state = app.state.registry

    def silent() -> tuple[int | None, str | None]:
        time.sleep(30)
        return None, "never"

    with TestClient(app) as client:
        monkeypatch.setattr(state, "chain_head", silent)
        with ThreadPoolExecutor(1) as pool:
            scrape = pool.submit(client.get, "/metrics")
            answer = scrape.result(timeout=10)
            assert answer.status_code == 200 and b"iscc_registry" in answer.content


@pytest.mark.chain
def test_relays_waiting_on_the_node_leave_threads_for_every_other_route(
    tmp_path: Path,
    deployment: Deployment,
    registry: Registry,
    work: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside attacker review: 45 relay posts waiting on a node that did not answer held all
    40 threads of the pool every sync route shares; searches, cases and metadata waited with
    them. Relays hold at most CHAIN_THREADS threads; the others queue holding none."""
    home = _home_of(tmp_path / "relays", deployment)
    body = prepare(registry, Account.create(), work.iscc, work.datahash, None, "").to_json()
    connecting, release = threading.Event(), threading.Event()
    monkeypatch.setattr(Registry, "open", _opening_held_until(release, connecting))
    # 45 clients, by a header (one TestClient is one peer address), each within its own bound.
    from registry.api import chain_threads

    monkeypatch.setattr(chain_threads, "client_of", lambda request: request.headers["x-who"])
    with TestClient(create_app(Settings(home=home))) as client, ThreadPoolExecutor(50) as pool:
        try:
            relays = [
                pool.submit(
                    client.post, "/v1/relay/declarations", json=body, headers={"x-who": str(n)}
                )
                for n in range(45)
            ]
            assert connecting.wait(10)
            # A sync route, answered in the shared thread pool.
            search = pool.submit(client.get, "/v1/search", params={"iscc": work.iscc})
            assert search.result(timeout=5).status_code == 200
        finally:
            release.set()
        assert all(r.result(timeout=30).status_code == 503 for r in relays)


def test_a_node_that_answers_the_probe_and_then_stops_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside attacker review: the probe passed, then the contract check waited for the RPC
    timeout and raised the transport's timeout, which callers neither remembered nor answered
    with a 503 (500 with a traceback per request)."""
    from registry.chain import contract

    monkeypatch.setattr(contract, "RPC_TIMEOUT_S", 0.5)
    from dripping_node import dripping_node

    with dripping_node("silent", fast_methods=frozenset({"eth_chainId"})) as url:
        deployment = Deployment(31337, "0x" + "11" * 20, 1, url, 0, 0)
        with pytest.raises(ChainUnavailable, match="stopped answering"):
            Registry.open(deployment)
        home = _home_of(tmp_path / "stops", deployment)
        state = create_app(Settings(home=home)).state.registry
        for _ in range(3):  # remembered: one try
            with pytest.raises(ChainUnavailable, match="stopped answering"):
                state.registry()


def test_a_node_timing_out_in_the_middle_of_a_request_is_a_503(
    tmp_path: Path, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside attacker review: a timeout of the node after connecting (the nonce bitmap, the
    latest block) answered 500 "internal error" and logged a traceback per request."""
    import requests

    from registry.api import declare as declare_routes

    home = _home_of(tmp_path / "midway", deployment)

    def timed_out(*_args: Any) -> int:
        raise requests.ReadTimeout("read timed out")

    monkeypatch.setattr(declare_routes, "next_nonce", timed_out)
    body = _PREPARE
    with TestClient(create_app(Settings(home=home))) as client:
        answer = client.post("/v1/declarations/prepare", json=body)
    assert answer.status_code == 503
    assert answer.json() == {
        "error": "chain-unavailable",
        "message": "the chain node did not answer (ReadTimeout)",
    }


def test_requests_waiting_on_the_node_are_bounded_and_refused_beyond(
    tmp_path: Path, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside attacker review: prepares waiting on a node that hung held the shared thread
    pool like relays did, and relays queued without bound, answered long after their clients
    left. Both hold at most CHAIN_THREADS threads, at most CHAIN_QUEUE more wait, and the
    rest are refused at once (503 overloaded)."""
    from registry.api import chain_threads

    monkeypatch.setattr(chain_threads, "CHAIN_THREADS", 1)
    monkeypatch.setattr(chain_threads, "CHAIN_QUEUE", 1)
    home = _home_of(tmp_path / "bounded", deployment)
    release = threading.Event()
    monkeypatch.setattr(Registry, "open", _opening_held_until(release))
    body = _PREPARE
    app = create_app(Settings(home=home))

    with TestClient(app) as client, ThreadPoolExecutor(3) as pool:
        try:
            running = pool.submit(client.post, "/v1/declarations/prepare", json=body)
            _until_chain_threads(app, 1, 0)
            queued = pool.submit(client.post, "/v1/declarations/prepare", json=body)
            _until_chain_threads(app, 1, 1)
            refused = client.post("/v1/declarations/prepare", json=body)
            assert refused.status_code == 503 and refused.json()["error"] == "overloaded"
        finally:
            release.set()
        assert running.result(timeout=10).status_code == 503
        assert queued.result(timeout=10).status_code == 503


def _until_chain_threads(app: Any, threads: int, waiting: int) -> None:
    """Wait until the requests that wait on the node hold `threads` and `waiting` wait."""
    deadline = time.monotonic() + 10
    while True:
        limiter = app.state.chain_admission._limiter
        counts = limiter.statistics() if limiter else None
        if counts and (counts.borrowed_tokens, counts.tasks_waiting) == (threads, waiting):
            return
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_one_client_cannot_take_every_place_waiting_for_the_node(
    tmp_path: Path, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One client address holds at most CHAIN_PER_CLIENT of the requests waiting on the node
    (429 beyond): filling CHAIN_QUEUE alone, it had every other client's relays and prepares
    refused as overloaded."""
    from registry.api import chain_threads

    monkeypatch.setattr(chain_threads, "CHAIN_THREADS", 1)
    monkeypatch.setattr(chain_threads, "CHAIN_QUEUE", 2)
    monkeypatch.setattr(chain_threads, "CHAIN_PER_CLIENT", 2)
    # Who asks, by a header: one TestClient is one peer address.
    monkeypatch.setattr(chain_threads, "client_of", lambda request: request.headers["x-who"])
    home = _home_of(tmp_path / "fair", deployment)
    release = threading.Event()
    monkeypatch.setattr(Registry, "open", _opening_held_until(release))
    app = create_app(Settings(home=home))

    def prepare(who: str) -> Any:
        return client.post("/v1/declarations/prepare", json=_PREPARE, headers={"x-who": who})

    with TestClient(app) as client, ThreadPoolExecutor(3) as pool:
        try:
            first = pool.submit(prepare, "mallory")
            _until_chain_threads(app, 1, 0)
            second = pool.submit(prepare, "mallory")
            _until_chain_threads(app, 1, 1)
            third = prepare("mallory")
            assert third.status_code == 429 and third.json()["error"] == "rate-limited"
            other = pool.submit(prepare, "alice")
            _until_chain_threads(app, 1, 2)
        finally:
            release.set()
        assert [f.result(timeout=10).status_code for f in (first, second, other)] == [503] * 3
        assert other.result().json()["error"] == "chain-unavailable"


def test_node_errors_name_the_node_without_its_credentials(
    tmp_path: Path, deployment: Deployment
) -> None:
    """Outside attacker review: a ChainUnavailable message, answered to anyone (503 bodies,
    /health), carried the whole node URL: a hosted node's API key in its path or query, a
    password in its user part."""
    from registry.chain.contract import connect, node_name

    port = free_port()
    secret = f"https://user:hunter2@127.0.0.1:{port}/v3/SECRET_API_KEY?key=SECRET_QUERY"
    with pytest.raises(ChainUnavailable) as refused:
        connect(secret)
    message = str(refused.value)
    assert f"https://127.0.0.1:{port}" in message
    assert not any(s in message for s in ("user", "hunter2", "SECRET_API_KEY", "SECRET_QUERY"))
    assert node_name("http://[::1]:8545/key") == "http://[::1]:8545"
    assert node_name("http://node:notaport/key") == "the configured node"
    home = _home_of(tmp_path / "secret", dataclasses.replace(deployment, rpc_url=secret))
    with TestClient(create_app(Settings(home=home))) as client:
        answer = client.post("/v1/declarations/prepare", json=_PREPARE)
        probe = client.get("/v1/health")
    assert answer.status_code == 503 and "hunter2" not in answer.text
    assert "SECRET" not in answer.text and "SECRET" not in probe.text


def test_a_malformed_prepare_is_refused_before_it_waits_for_the_node(
    tmp_path: Path, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside attacker review: a prepare's body was checked after its two node reads, so
    malformed ones held places among the requests waiting on the node until then (40 filled
    them all). It is refused (400) before it takes one."""
    home = _home_of(tmp_path / "malformed", deployment)
    release = threading.Event()
    monkeypatch.setattr(Registry, "open", _opening_held_until(release))
    app = create_app(Settings(home=home))
    with TestClient(app) as client, ThreadPoolExecutor(1) as pool:
        try:
            garbage = _PREPARE | {"iscc_code": "garbage"}
            answer = pool.submit(client.post, "/v1/declarations/prepare", json=garbage)
            assert answer.result(timeout=10).status_code == 400
            assert app.state.chain_admission.admitted == 0
        finally:
            release.set()


def _page_state(get_block: Callable[[int], Any]) -> Any:
    """What a declaration page's block times need of the service: a deployment, no indexer
    problem, and a node whose `get_block` is `get_block`."""
    node = SimpleNamespace(w3=SimpleNamespace(eth=SimpleNamespace(get_block=get_block)))
    return SimpleNamespace(
        contract=f"0x{os.urandom(20).hex()}",  # the cache is per contract: a fresh one
        deployment=object(),
        indexer_problem=None,
        connected_registry=lambda: node,
    )


def test_a_page_asks_the_node_for_block_times_within_a_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Own review: a declaration page asked the node for the time of every block of its
    history, one call after the other, from a thread of the shared pool: an owner who updated
    a declaration a thousand times made each view of its page a thousand node calls, and
    with a node that hangs, each view held a thread for a timeout per block (a failed call
    went on to the next block). The calls stop at the first failure and after
    BLOCK_TIMES_BUDGET_S; the blocks not asked show their numbers until a later view."""
    from registry.api.chain_threads import NodeWaits
    from registry.api.web import pages

    monkeypatch.setattr(pages, "BLOCK_TIMES_BUDGET_S", 0.2)
    asked: list[int] = []

    def slow(block: int) -> dict[str, int]:
        asked.append(block)
        time.sleep(0.05)
        return {"timestamp": 1_700_000_000 + block}

    state = _page_state(slow)
    first = pages._block_times(state, NodeWaits(2), range(1, 1001))
    assert 1 <= len(first) == len(asked) <= 6
    second = pages._block_times(state, NodeWaits(2), range(1, 1001))
    assert set(first) < set(second)  # known times kept, more asked
    assert len(asked) == len(second)
    assert all(time.timestamp() == 1_700_000_000 + block for block, time in second.items())

    failed: list[int] = []

    def down(block: int) -> Any:
        failed.append(block)
        raise TimeoutError("the node did not answer")

    assert pages._block_times(_page_state(down), NodeWaits(2), range(1, 1001)) == {}
    assert len(failed) == 1


def test_a_page_does_not_wait_on_the_node_when_its_slots_are_taken() -> None:
    """With every slot for node calls of the shared pool taken (a node that hangs), a page
    shows the block times it knows and asks nothing."""
    from registry.api.chain_threads import PAGE_NODE_WAITS, NodeWaits
    from registry.api.web import pages

    asked: list[int] = []
    state = _page_state(lambda block: asked.append(block) or {"timestamp": block})
    waits = NodeWaits(PAGE_NODE_WAITS)
    assert pages._block_times(state, waits, [7]) == {7: pages.datetime.fromtimestamp(7, pages.UTC)}
    held = [waits.slot() for _ in range(PAGE_NODE_WAITS)]
    assert all(slot.__enter__() for slot in held)
    assert pages._block_times(state, waits, [7, 8, 9]) == {
        7: pages.datetime.fromtimestamp(7, pages.UTC)
    }
    assert asked == [7]
    for slot in held:
        slot.__exit__(None, None, None)
    assert set(pages._block_times(state, waits, [7, 8, 9])) == {7, 8, 9}


def test_a_page_stops_a_dripping_node_at_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside review: the page's budget was checked before each call only, so one answer
    that dripped held the page for the node's whole deadline (120 s)."""
    from dripping_node import dripping_node

    from registry.api.chain_threads import NodeWaits
    from registry.api.web import pages
    from registry.chain import contract

    monkeypatch.setattr(pages, "BLOCK_TIMES_BUDGET_S", 0.5)
    with dripping_node("body", fast_methods=frozenset({"eth_chainId"})) as url:
        w3 = contract.connect(url)
        started = time.monotonic()
        assert pages._block_times(_page_state(w3.eth.get_block), NodeWaits(1), [5]) == {}
        assert time.monotonic() - started < 2


def test_a_page_never_connects_to_the_node() -> None:
    """Outside review: a page's first block-time read opened the connection to the node under
    the page's 2 s budget; a node answering in 0.8 s per call was cut there, and the failure,
    remembered, refused every relay, prepare and wallet check for CONNECT_RETRY_S."""
    from registry.api.chain_threads import NodeWaits
    from registry.api.web import pages

    connected: list[str] = []
    state = _page_state(lambda block: {"timestamp": block})
    state.connected_registry = lambda: None  # nobody connected yet
    state.registry = lambda: connected.append("page") or state  # what connecting would do
    assert pages._block_times(state, NodeWaits(1), [5, 6]) == {}
    assert connected == []


def test_a_wallet_check_waits_on_a_dripping_node_for_its_budget_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside review: a smart wallet's check is two node calls (get_code, the wallet's
    eth_call), each with a deadline of its own (120 s): with a node answering a byte at a time
    it held one of the few wallet slots for minutes. The check has one budget in all."""
    from dripping_node import dripping_node

    from registry.api import ledger as api_ledger
    from registry.chain import contract

    monkeypatch.setattr(api_ledger, "WALLET_CHECK_S", 0.5)
    with dripping_node("body", fast_methods=frozenset({"eth_chainId"})) as url:
        node = SimpleNamespace(w3=contract.connect(url))
        state = SimpleNamespace(deployment=None, registry=lambda: node)
        started = time.monotonic()
        with pytest.raises(ChainUnavailable, match="did not answer"):
            api_ledger._ask_wallet(state, "0x" + "11" * 20, b"\0" * 32, b"\1" * 65)  # type: ignore[arg-type]
        assert time.monotonic() - started < 3
