"""Webhooks against a real HTTP receiver the test starts, on SQLite and PostgreSQL: signed
bodies, retries with backoff until a failing receiver answers, delivery across a restart of the
delivery loop, the outbox's leases, and the defences against a hostile subscriber URL."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import ledger_data
import pytest
from sqlalchemy import inspect, select, update

from registry.config import Settings
from registry.errors import Forbidden, InputError, NotFound
from registry.ledger import cases, notify, webhooks
from registry.ledger.notify import Deliverer, DeliveryPolicy
from registry.store import migrations
from registry.store.schema import deliveries, meta, notices, subscriptions
from registry.store.store import Store

WORK = "ISCC:MAIGBISBQHSAAAAA"
OTHER_WORK = "ISCC:MAIGCISBQHSAAAAA"
CASE = "0x" + "ca" * 32


@dataclass
class Arrival:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records what arrives and answers with the next
    status of `answers` (the last one repeats)."""

    answers: list[int] = field(default_factory=lambda: [200])
    arrived: list[Arrival] = field(default_factory=list)
    delay_s: float = 0.0
    extra: bytes = b""
    redirect_to: str = ""

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.arrived.append(Arrival(self.path, dict(self.headers.items()), body))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                index = min(len(receiver.arrived), len(receiver.answers)) - 1
                status = receiver.answers[index]
                self.send_response(status)
                if receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
                payload = b"receiver says no " + receiver.extra
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                # The sender may stop reading early, as it should.
                with contextlib.suppress(OSError):
                    self.wfile.write(payload)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?x=1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as store:
        yield store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The receiver listens on loopback, which only this setting allows.
    return Settings(home=tmp_path / "home", webhook_allow_private=True)


POLICY = DeliveryPolicy(
    max_attempts=4, backoff_s=30, backoff_cap_s=600, timeout_s=5, allow_private=True
)


def announce(
    store: Store, seq: int = 0, case_id: str = CASE, works: tuple[str, ...] = (WORK,)
) -> int | None:
    with store._write() as conn:
        return notify.record_notice(
            conn,
            case_id=case_id,
            case_seq=seq,
            opened=seq == 0,
            kind="exclusive_overlap",
            works=works,
            parties=["0x" + "a1" * 20, "0x" + "b0" * 20],
            case={"id": case_id, "kind": "exclusive_overlap", "state": "open", "works": works},
            event={"seq": seq, "action": "open" if seq == 0 else "dispute", "note": "ü"},
        )


def rows(store: Store) -> list[Any]:
    with store._read() as conn:
        return conn.execute(select(deliveries).order_by(deliveries.c.id)).all()


def later(hours: float) -> float:
    """A moment past every backoff this test's policy can choose."""
    return time.time() + hours * 3600


def test_a_delivery_is_signed_over_its_timestamp_and_exact_body(
    store: Store, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver()
    sub = notify.subscribe(store, settings, hook.url, "10.0.0.7")
    notice_id = announce(store)
    assert Deliverer(store, POLICY).deliver_due() == 1
    (arrival,) = hook.arrived
    assert arrival.path == "/hook?x=1"
    assert webhooks.verify(sub["secret"], arrival.headers, arrival.body)
    notice = json.loads(arrival.body)
    assert notice["id"] == notice_id
    assert notice["type"] == arrival.headers["X-Registry-Event"] == "case.opened"
    assert notice["case"]["id"] == CASE and notice["event"]["note"] == "ü"
    # Another secret, another body, or an old timestamp: refused, as a receiver must.
    assert not webhooks.verify("whsec_other", arrival.headers, arrival.body)
    assert not webhooks.verify(sub["secret"], arrival.headers, arrival.body + b" ")
    stamp = int(arrival.headers[webhooks.TIMESTAMP_HEADER])
    assert not webhooks.verify(sub["secret"], arrival.headers, arrival.body, now=stamp + 3600)
    replayed = {**arrival.headers, webhooks.TIMESTAMP_HEADER: str(stamp + 1)}
    assert not webhooks.verify(sub["secret"], replayed, arrival.body, now=stamp + 1)
    (row,) = rows(store)
    assert (row.status, row.attempts, row.last_status) == ("delivered", 1, 200)


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(
    store: Store, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver(answers=[500, 503, 204])
    sub = notify.subscribe(store, settings, hook.url, "10.0.0.7")
    announce(store)
    deliverer = Deliverer(store, POLICY)
    assert deliverer.deliver_due() == 1
    (row,) = rows(store)
    assert (row.status, row.attempts, row.last_status) == ("pending", 1, 500)
    assert "receiver says no" in row.last_error
    # Backoff: not due again at once; due after the first delay, then after a doubled one.
    first_wait = row.next_attempt - time.time()
    assert POLICY.backoff_s * 0.9 <= first_wait <= POLICY.backoff_s * 1.1 + 1
    assert deliverer.deliver_due() == 0
    assert deliverer.deliver_due(now=row.next_attempt + 1) == 1
    (row,) = rows(store)
    assert (row.status, row.attempts, row.last_status) == ("pending", 2, 503)
    assert row.next_attempt - time.time() >= 2 * POLICY.backoff_s * 0.9
    assert deliverer.deliver_due(now=row.next_attempt + 1) == 1
    (row,) = rows(store)
    assert (row.status, row.attempts, row.last_status, row.last_error) == (
        "delivered",
        3,
        204,
        None,
    )
    assert len(hook.arrived) == 3
    # Every attempt carried the same notice, each signed afresh.
    assert len({a.body for a in hook.arrived}) == 1
    assert len({a.headers["X-Registry-Delivery"] for a in hook.arrived}) == 1
    assert all(webhooks.verify(sub["secret"], a.headers, a.body) for a in hook.arrived)
    assert deliverer.deliver_due(now=later(100)) == 0


def test_a_slow_receiver_takes_one_timeout_a_round_and_holds_up_nobody(
    store: Store, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    """Review finding: each subscription's notices were posted one after another whatever
    happened, so four receivers answering late held every worker for ten timeouts each and a
    healthy subscriber waited 10 s for its 10 notices. Now a failed post ends its
    subscription's turn and the rest wait for its retry, uncounted."""
    slow = [receiver(delay_s=3) for _ in range(4)]
    healthy = receiver()
    for r in (*slow, healthy):
        notify.subscribe(store, settings, r.url, "10.0.0.7")
    for seq in range(10):
        announce(store, seq)
    policy = dataclasses.replace(POLICY, timeout_s=0.5)
    started = time.monotonic()
    assert Deliverer(store, policy).deliver_due() == 50
    took = time.monotonic() - started
    assert len(healthy.arrived) == 10
    assert [len(r.arrived) for r in slow] == [1, 1, 1, 1]
    assert took < 2.5, took  # one timeout per slow receiver, four workers
    waiting = [row for row in rows(store) if row.status == "pending"]
    assert len(waiting) == 40
    assert sorted(row.attempts for row in waiting).count(0) == 36
    # The 36 untried notices are due when their subscription's failed one is retried.
    retries = {row.subscription_id: row.next_attempt for row in waiting if row.attempts}
    assert all(row.next_attempt == retries[row.subscription_id] for row in waiting)


def test_delivery_gives_up_after_its_attempts_and_the_backoff_is_capped(
    store: Store, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver(answers=[500])
    notify.subscribe(store, settings, hook.url, "10.0.0.7")
    announce(store)
    deliverer = Deliverer(store, POLICY)
    for _ in range(POLICY.max_attempts):
        assert deliverer.deliver_due(now=later(1)) == 1
    (row,) = rows(store)
    assert (row.status, row.attempts) == ("failed", POLICY.max_attempts)
    assert deliverer.deliver_due(now=later(100)) == 0
    assert len(hook.arrived) == POLICY.max_attempts
    assert POLICY.delay(30) <= POLICY.backoff_cap_s * 1.1


def test_a_restarted_delivery_loop_resumes_from_the_outbox(
    db_url: str, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver(answers=[500, 200])
    with Store.open(db_url) as store:
        sub = notify.subscribe(store, settings, hook.url, "10.0.0.7")
        announce(store)
        stop = threading.Event()
        first = Deliverer(store, POLICY)
        # The service's loop: one failed attempt, then the service stops.
        loop = threading.Thread(target=first.run, args=(stop, 0.05))
        loop.start()
        _wait_for(lambda: len(hook.arrived) == 1)
        stop.set()
        loop.join(timeout=30)
        assert not loop.is_alive()
    # A new process: a new store connection, a new loop; the outbox remembers the attempt.
    with Store.open(db_url) as store:
        (row,) = rows(store)
        assert (row.status, row.attempts) == ("pending", 1)
        assert Deliverer(store, POLICY).deliver_due(now=row.next_attempt + 1) == 1
        (row,) = rows(store)
        assert (row.status, row.attempts) == ("delivered", 2)
        assert notify.subscription(store, sub["id"], sub["secret"])["deliveries"] == {
            "pending": 0,
            "delivered": 1,
            "failed": 0,
        }
    assert len(hook.arrived) == 2


def test_a_claimed_row_is_not_posted_twice_until_its_lease_runs_out(
    store: Store, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver()
    notify.subscribe(store, settings, hook.url, "10.0.0.7")
    announce(store)
    now = time.time()
    crashed = Deliverer(store, POLICY)
    # A sender claims the row and dies before it posts.
    assert len(crashed._claim(now)) == 1
    other = Deliverer(store, POLICY)
    assert other.deliver_due(now=now + 1) == 0
    assert other.deliver_due(now=now + POLICY.lease_s + 1) == 1
    assert len(hook.arrived) == 1


def test_the_loop_collects_case_events_from_any_process(
    store: Store, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver()
    notify.subscribe(store, settings, hook.url, "10.0.0.7")
    assert announce(store) is not None
    # Announcing the same case event again adds nothing.
    assert announce(store) is None
    assert announce(store, seq=1) is not None
    Deliverer(store, POLICY).deliver_due()
    assert [json.loads(a.body)["type"] for a in hook.arrived] == ["case.opened", "case.changed"]


def test_filters_choose_the_notices_of_a_subscription(
    store: Store, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    every, by_work, by_case, by_kind = (receiver() for _ in range(4))
    notify.subscribe(store, settings, every.url, "10.0.0.7")
    notify.subscribe(store, settings, by_work.url, "10.0.0.7", work=OTHER_WORK)
    notify.subscribe(store, settings, by_case.url, "10.0.0.7", case_id="0x" + "cb" * 32)
    notify.subscribe(store, settings, by_kind.url, "10.0.0.7", kind="unlicensed_use")
    announce(store)
    announce(store, case_id="0x" + "cb" * 32, works=(WORK, OTHER_WORK))
    Deliverer(store, POLICY).deliver_due()
    assert len(every.arrived) == 2
    assert [json.loads(a.body)["case"]["id"] for a in by_work.arrived] == ["0x" + "cb" * 32]
    assert [json.loads(a.body)["case"]["id"] for a in by_case.arrived] == ["0x" + "cb" * 32]
    assert by_kind.arrived == []


def test_redirects_are_not_followed(
    store: Store, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    target = receiver()
    hook = receiver(answers=[307], redirect_to=target.url)
    notify.subscribe(store, settings, hook.url, "10.0.0.7")
    announce(store)
    Deliverer(store, POLICY).deliver_due()
    (row,) = rows(store)
    assert row.status == "pending" and "redirects are not followed" in row.last_error
    assert target.arrived == []


def test_a_slow_or_verbose_receiver_is_cut_off(receiver: Callable[..., Receiver]) -> None:
    slow = receiver(delay_s=3)
    outcome = webhooks.post(slow.url, b"{}", {}, timeout_s=0.5, allow_private=True)
    assert not outcome.delivered and outcome.error == "no answer within 0.5 s"
    verbose = receiver(answers=[500], extra=b"x" * 5_000_000)
    outcome = webhooks.post(verbose.url, b"{}", {}, timeout_s=5, allow_private=True)
    assert not outcome.delivered and outcome.status == 500
    assert outcome.error is not None and len(outcome.error) < 300


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        # An IPv4 address inside IPv6: NAT64, 6to4, IPv4-compatible; and site-local.
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[64:ff9b:1::a00:1]/",
        "http://[2002:7f00:1::1]/",
        "http://[::7f00:1]/",
        "http://[fec0::1]/",
    ],
)
def test_urls_inside_a_network_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(webhooks.UnsafeUrl, match="non-public address"):
        webhooks.check_url(url)
    assert webhooks.check_url(url, allow_private=True).host
    # At delivery too (the name may have resolved elsewhere when subscribing).
    outcome = webhooks.post(url, b"{}", {}, timeout_s=1)
    assert not outcome.delivered and "non-public address" in (outcome.error or "")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://93.184.216.34/", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http://user:pw@93.184.216.34/", "user name or password"),
        ("http:///nohost", "no host"),
        ("http://93.184.216.34:99999/", "not a URL"),
        ("https://93.184.216.34/" + "a" * 3000, "longer than"),
        ("http://no-such-host.invalid/", "does not resolve"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(webhooks.UnsafeUrl, match=reason):
        webhooks.check_url(url, allow_private=True)


def test_a_public_address_inside_nat64_is_accepted() -> None:
    assert webhooks.check_url("http://[64:ff9b::5db8:d822]/").address == "64:ff9b::5db8:d822"


def test_a_public_address_is_accepted_and_pinned() -> None:
    target = webhooks.check_url("https://93.184.216.34:8443/in?a=b")
    assert (target.host, target.port, target.path, target.address) == (
        "93.184.216.34",
        8443,
        "/in?a=b",
        "93.184.216.34",
    )


def test_subscriptions_are_limited_per_creator_and_deleted_with_their_secret(
    store: Store, tmp_path: Path, receiver: Callable[..., Receiver]
) -> None:
    settings = Settings(home=tmp_path, webhook_allow_private=True, subscriptions_per_creator=2)
    hook = receiver()
    first = notify.subscribe(store, settings, hook.url, "10.0.0.7")
    notify.subscribe(store, settings, hook.url, "10.0.0.7")
    with pytest.raises(Forbidden, match="holds 2 subscriptions"):
        notify.subscribe(store, settings, hook.url, "10.0.0.7")
    notify.subscribe(store, settings, hook.url, "10.0.0.8")  # another client
    with pytest.raises(InputError, match="non-public"):
        notify.subscribe(store, Settings(home=tmp_path), hook.url, "10.0.0.9")
    announce(store)
    with pytest.raises(Forbidden):
        notify.unsubscribe(store, first["id"], "whsec_wrong")
    with pytest.raises(NotFound):
        notify.unsubscribe(store, "sub_" + "0" * 24, first["secret"])
    notify.unsubscribe(store, first["id"], first["secret"])
    assert notify.deliveries_of(store, first["id"]) == []
    with pytest.raises(NotFound):
        notify.subscription(store, first["id"], first["secret"])
    # The slot is free again.
    notify.subscribe(store, settings, hook.url, "10.0.0.7")
    Deliverer(store, POLICY).deliver_due()
    assert len(hook.arrived) == 2


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds:.0f} s")
        time.sleep(0.05)


def test_opened_and_answered_cases_reach_subscribers_of_their_work(
    store: Store, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    """From the cases' own event log: the case of a detected conflict opens, a party disputes
    it; both steps are announced once, to the subscribers whose filters match."""
    hook, elsewhere = receiver(), receiver()
    notify.subscribe(store, settings, hook.url, "10.0.0.7", work=ledger_data.WORK)
    notify.subscribe(store, settings, elsewhere.url, "10.0.0.7", work=ledger_data.OTHER_WORK)
    clash = ledger_data.exclusive_clash(store)
    assert notify.collect(store) == 1
    assert notify.collect(store) == 0
    signed = cases.SignedBy(
        ledger_data.RIVAL, ledger_data.JAN_2025 + 60, b"\x01" * 65, b"\x02" * 32
    )
    cases.dispute(store, clash.case_id, signed, "my licence came first")
    assert notify.collect(store) == 1
    Deliverer(store, POLICY).deliver_due()
    opened, disputed = (json.loads(a.body) for a in hook.arrived)
    assert opened["type"] == "case.opened" and disputed["type"] == "case.changed"
    assert opened["case"]["id"] == disputed["case"]["id"] == clash.case_id
    assert opened["case"]["state"] == "open" and disputed["case"]["state"] == "disputed"
    assert disputed["event"]["actor"] == ledger_data.RIVAL
    assert disputed["event"]["note"] == "my licence came first"
    assert opened["case"]["works"] == [ledger_data.WORK]
    assert ledger_data.LICENSEE in opened["case"]["parties"]
    assert [n["id"] for n in notify.notices_after(store, 0)] == [opened["id"], disputed["id"]]
    assert notify.notices_after(store, opened["id"]) == [disputed]
    assert elsewhere.arrived == []


def test_a_version_10_store_gains_the_notification_tables(
    db_url: str, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    with Store.open(db_url) as store, store.engine.begin() as conn:
        for table in (deliveries, subscriptions, notices):
            table.drop(conn)
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="10"))
    with Store.open(db_url) as store:
        with store.engine.connect() as conn:
            assert migrations.stored_version(conn) == migrations.SCHEMA_VERSION == 11
            assert all(
                inspect(conn).has_table(t.name) for t in (notices, subscriptions, deliveries)
            )
        hook = receiver()
        notify.subscribe(store, settings, hook.url, "10.0.0.7")
        announce(store)
        assert Deliverer(store, POLICY).deliver_due() == 1
        assert len(hook.arrived) == 1


def test_every_subscriber_gets_the_notice_under_its_own_number(
    store: Store, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    """Outbox rows and notices are numbered apart: a body carries the notice's number, and
    each delivery its own."""
    hooks = [receiver() for _ in range(3)]
    for hook in hooks:
        notify.subscribe(store, settings, hook.url, "10.0.0.7")
    first = announce(store, seq=0)
    second = announce(store, seq=1)
    Deliverer(store, POLICY).deliver_due()
    for hook in hooks:
        assert [json.loads(a.body)["id"] for a in hook.arrived] == [first, second]
    deliveries_seen = {a.headers["X-Registry-Delivery"] for h in hooks for a in h.arrived}
    assert len(deliveries_seen) == 6


def test_a_filtered_reader_gets_only_its_notices_and_the_newest_position(store: Store) -> None:
    """The store filters a feed's notices: a reader replaying from the start with a filter
    that matches little gets just those and the newest position, so it neither reads the
    others into the service nor asks again for them."""
    other_case, other_work = "0x" + "cd" * 32, "ISCC:MAIGBISBQHSAAAAB"
    for seq in range(150):
        announce(store, seq, case_id=other_case, works=(other_work,))
    mine = announce(store, 0)
    newest = announce(store, 150, case_id=other_case, works=(other_work,))
    found, position = notify.matching_notices(store, 0, 100, case_id=CASE)
    assert [n["id"] for n in found] == [mine] and position == newest
    found, position = notify.matching_notices(store, 0, 100, work=WORK)
    assert [n["id"] for n in found] == [mine] and position == newest
    assert notify.matching_notices(store, newest, 100, kind="unlicensed_use") == ([], newest)
    found, position = notify.matching_notices(store, 0, 100, work=other_work)
    assert len(found) == 100 and position == found[-1]["id"]


def test_a_receiver_answering_410_gone_ends_its_subscription(
    store: Store, settings: Settings, receiver: Callable[..., Receiver]
) -> None:
    gone, kept = receiver(answers=[410]), receiver()
    ended = notify.subscribe(store, settings, gone.url, "10.0.0.7")
    notify.subscribe(store, settings, kept.url, "10.0.0.7")
    for seq in range(3):
        announce(store, seq)
    assert Deliverer(store, POLICY).deliver_due() == 6
    assert len(gone.arrived) == 1 and len(kept.arrived) == 3
    assert notify.deliveries_of(store, ended["id"]) == []
    with pytest.raises(NotFound):
        notify.subscription(store, ended["id"], ended["secret"])
    announce(store, 3)
    Deliverer(store, POLICY).deliver_due()
    assert len(gone.arrived) == 1 and len(kept.arrived) == 4


def test_review_a_work_filter_without_the_iscc_prefix_still_finds_its_notices(
    store: Store,
) -> None:
    """GET /v1/events accepts `work` with or without "ISCC:" (formats.ISCC_ID) and passes it
    on as given; the store's LIKE looks for the quoted string, so "MAI..." never matches the
    stored "ISCC:MAI..." and the stream stays silent for good (likewise an upper-case case_id,
    which FILTER allows)."""
    mine = announce(store, 0)
    bare = WORK.removeprefix("ISCC:")
    assert bare != WORK
    found, _position = notify.matching_notices(store, 0, 100, work=bare)
    assert [n["id"] for n in found] == [mine]


def test_a_webhook_whose_connect_outlasts_the_deadline_is_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside review: the deadline cut `conn.sock`, which is None until the connection (and
    its TLS handshake) is made; a deadline that passed meanwhile cut nothing, and a receiver
    that then dripped its answer held the delivery as long as it liked, and was reported
    delivered. The socket is named to the deadline as soon as it exists, and cut at once."""
    import socket

    from dripping_node import dripping_node

    connect = socket.create_connection

    def slow(*args: Any, **kwargs: Any) -> socket.socket:
        time.sleep(1.2)  # a dropped SYN, sent again
        return connect(*args, **kwargs)

    with dripping_node("headers") as url:
        monkeypatch.setattr(webhooks.socket, "create_connection", slow)
        started = time.monotonic()
        outcome = webhooks.post(url + "/hook", b"{}", {}, timeout_s=1.0, allow_private=True)
    assert (outcome.delivered, outcome.error) == (False, "no answer within 1 s")
    assert time.monotonic() - started < 3


def test_an_https_webhook_that_drips_its_answer_is_cut_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside review: TLS takes the plain socket over (its descriptor moves to the TLS
    socket), so the socket the deadline named could no longer be shut down, and an https
    receiver dripping its answer was bounded by the wait per read only."""
    import ssl

    from dripping_node import TLS, dripping_node

    make = ssl.create_default_context
    trusting = lambda: make(cafile=str(TLS.with_suffix(".crt")))  # noqa: E731 - its certificate
    monkeypatch.setattr(webhooks.ssl, "create_default_context", trusting)
    with dripping_node("body", tls=True) as url:
        started = time.monotonic()
        outcome = webhooks.post(url + "/hook", b"{}", {}, timeout_s=1.0, allow_private=True)
    assert (outcome.delivered, outcome.error) == (False, "no answer within 1 s")
    assert time.monotonic() - started < 2.5
