"""The licence ledger's read endpoints and webhook subscriptions, on SQLite and PostgreSQL: a
work's licences in words, cases with their filters and timeline, subscriptions with their
secret; bad input gets a 4xx with one line, never a 500."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import ledger_data
import pytest
from fastapi.testclient import TestClient
from ledger_data import GRANTOR, LICENSEE, RIVAL, STRANGER, WORK, Ledger
from sqlalchemy import delete, update

from registry.api import create_app
from registry.api.web.ledger_views import kind_text
from registry.api.web.pages import templates
from registry.config import Settings
from registry.ledger import notify
from registry.ledger.licence_views import work_licences
from registry.store.schema import case_events, case_parties
from registry.store.schema import cases as cases_table
from registry.store.store import Store


@pytest.fixture
def ledger_store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as store:
        yield store


@pytest.fixture
def clash(ledger_store: Store) -> Ledger:
    return ledger_data.exclusive_clash(ledger_store)


def _client(tmp_path: Path, store: Store, **settings: object) -> TestClient:
    return TestClient(create_app(Settings(home=tmp_path / "home", **settings), store=store))


@pytest.fixture
def api(tmp_path: Path, ledger_store: Store) -> Iterator[TestClient]:
    with _client(tmp_path, ledger_store, webhook_allow_private=True) as client:
        yield client


def test_a_works_licences_read_as_a_table(api: TestClient, clash: Ledger) -> None:
    answer = api.get(f"/v1/works/{WORK}/licences")
    assert answer.status_code == 200
    body = answer.json()
    assert body["iscc_id"] == WORK
    exclusive, public = body["licences"]
    assert exclusive["grant_id"] == clash.exclusive.grant_id
    assert (exclusive["who"], exclusive["where"], exclusive["what"], exclusive["when"]) == (
        LICENSEE,
        "AT, DE",
        ["SVOD"],
        "2025-01-01 to 2030-01-01",
    )
    assert exclusive["exclusive"] and exclusive["sublicensable"]
    assert (public["who"], public["where"], public["what"], public["when"]) == (
        "public",
        "World",
        ["SVOD", "AVOD"],
        "from 2025-01-01",
    )
    assert public["licensee"] is None and not public["exclusive"]
    for licence in (exclusive, public):
        (conflict,) = licence["conflicts"]
        assert conflict == {
            "conflict": clash.conflict_id,
            "kind": "exclusive_overlap",
            "case": clash.case_id,
            "case_state": "open",
        }
    # Lower case and without the prefix is the same work.
    again = api.get(f"/v1/works/{WORK.removeprefix('ISCC:').lower()}/licences")
    assert again.json() == body


def test_licence_status_follows_the_term_and_terminations(
    api: TestClient, ledger_store: Store, clash: Ledger
) -> None:
    ended = ledger_data.granted(RIVAL, 3, start=1_577_836_800, end=1_609_459_200, block=12)
    pending = ledger_data.granted(RIVAL, 4, start=2_051_222_400, end=0, block=13)
    ledger_data.store_events(
        ledger_store, ended, pending, ledger_data.terminated(clash.exclusive, GRANTOR)
    )
    licences = api.get(f"/v1/works/{WORK}/licences").json()["licences"]
    assert [(entry["grant_id"], entry["status"]) for entry in licences] == [
        (clash.exclusive.grant_id, "terminated"),
        (clash.rival.grant_id, "active"),
        (ended.grant_id, "ended"),
        (pending.grant_id, "pending"),
    ]
    assert licences[0]["terminated"]["by"] == GRANTOR
    assert licences[2]["when"] == "2020-01-01 to 2021-01-01"


def test_a_works_licences_come_a_page_at_a_time(api: TestClient, clash: Ledger) -> None:
    """Anyone may grant over any work: an answer holds at most `limit` licences (review
    finding: 34,000 grants on one work made one answer of 34,000 in 2 s)."""
    path = f"/v1/works/{WORK}/licences"
    both = api.get(path).json()
    assert len(both["licences"]) == 2 and both["truncated"] is False
    first = api.get(path, params={"limit": 1}).json()
    assert first["truncated"] is True
    second = api.get(path, params={"limit": 1, "offset": 1}).json()
    assert second["truncated"] is False
    assert [first["licences"][0], second["licences"][0]] == both["licences"]
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        assert api.get(path, params=bad).status_code == 422


def test_an_unlicensed_work_has_no_licences(api: TestClient, clash: Ledger) -> None:
    answer = api.get(f"/v1/works/{ledger_data.OTHER_WORK}/licences")
    assert answer.status_code == 200 and answer.json()["licences"] == []


@pytest.mark.parametrize("bad", ["nonsense", "ISCC:KACYPXW445FTYNJ3", "ISCC:" + "A" * 120])
def test_licences_of_something_that_is_no_iscc_id_are_refused(
    api: TestClient, clash: Ledger, bad: str
) -> None:
    answer = api.get(f"/v1/works/{bad}/licences")
    assert answer.status_code in (400, 422)
    assert answer.json()["message"]


def test_a_works_licence_conflicts_are_listed_with_their_case_or_none(
    api: TestClient, ledger_store: Store, clash: Ledger
) -> None:
    with ledger_store._write() as conn:
        conn.execute(
            update(cases_table).where(cases_table.c.id == clash.case_id).values(state="disputed")
        )
        conn.execute(delete(case_events).where(case_events.c.case_id == clash.case_id))
        conn.execute(delete(case_parties).where(case_parties.c.case_id == clash.case_id))
    answer = api.get(f"/v1/works/{WORK}/licence-conflicts", params={"kind": "exclusive_overlap"})
    assert answer.status_code == 200, answer.text
    (conflict,) = answer.json()["conflicts"]
    assert conflict["id"] == clash.conflict_id
    assert conflict["case"] == {"id": clash.case_id, "state": "disputed"}
    assert conflict["overlap"]["text"] == "SVOD in AT, DE, 2025-01-01 to 2030-01-01"
    with ledger_store._write() as conn:
        conn.execute(delete(cases_table).where(cases_table.c.id == clash.case_id))
    (held,) = api.get(f"/v1/works/{WORK}/licence-conflicts").json()["conflicts"]
    assert held["case"] is None
    assert api.get(f"/v1/works/{WORK}/licence-conflicts?status=resolved").json() == {
        "iscc_id": WORK,
        "conflicts": [],
        "truncated": False,
    }
    for query in ("kind=overlap", "status=closed", "limit=0"):
        bad = api.get(f"/v1/works/{WORK}/licence-conflicts?{query}")
        assert bad.status_code == 422, query
    # The licence table names a conflict without a case, with no link to a case.
    table = templates.env.get_template("licences.html").render(
        licences=work_licences(ledger_store, WORK), cases=[], licences_shown=200
    )
    assert f"{kind_text('exclusive_overlap')} (no case)" in table
    assert "/case/None" not in table


def test_cases_are_listed_by_state_work_and_party(api: TestClient, clash: Ledger) -> None:
    every = api.get("/v1/cases").json()["cases"]
    assert [c["id"] for c in every] == [clash.case_id]
    case = every[0]
    assert case["state"] == "open" and case["kind"] == "exclusive_overlap"
    assert {p["address"] for p in case["parties"]} == {GRANTOR, RIVAL, LICENSEE}
    assert case["conflict"]["overlap"]["text"] == "SVOD in AT, DE, 2025-01-01 to 2030-01-01"
    for query, count in [
        ("state=open", 1),
        ("state=resolved", 0),
        (f"work={WORK}", 1),
        (f"work={ledger_data.OTHER_WORK}", 0),
        (f"party={LICENSEE.lower()}", 1),
        (f"party={STRANGER}", 0),
        (f"party={RIVAL}&state=open&work={WORK}", 1),
    ]:
        assert len(api.get(f"/v1/cases?{query}").json()["cases"]) == count, query


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("state=closed", 422),
        ("party=0x1234", 400),
        ("work=ISCC:KACYPXW445FTYNJ3", 400),
        ("limit=0", 422),
        ("limit=100000", 422),
        ("offset=-1", 422),
    ],
)
def test_bad_case_filters_are_refused(
    api: TestClient, clash: Ledger, query: str, status: int
) -> None:
    answer = api.get(f"/v1/cases?{query}")
    assert answer.status_code == status
    assert answer.json()["message"] and "Traceback" not in answer.text


def test_a_case_shows_its_timeline(api: TestClient, clash: Ledger) -> None:
    case = api.get(f"/v1/cases/{clash.case_id}").json()
    assert case["id"] == clash.case_id
    (opened,) = case["events"]
    assert (opened["seq"], opened["actor"], opened["action"], opened["state"]) == (
        0,
        "registry",
        "open",
        "open",
    )
    assert case["conflict"]["grant_id"] == clash.exclusive.grant_id
    assert api.get(f"/v1/cases/{clash.case_id.upper().replace('0X', '0x')}").status_code == 200


def test_unknown_and_malformed_cases(api: TestClient, clash: Ledger) -> None:
    missing = api.get("/v1/cases/0x" + "00" * 32)
    assert missing.status_code == 404 and missing.json()["error"] == "not-found"
    assert api.get("/v1/cases/0x1234").status_code == 422
    assert api.get("/v1/cases/" + "z" * 66).status_code == 422


def test_a_subscription_is_made_read_and_deleted_with_its_secret(
    api: TestClient, clash: Ledger
) -> None:
    # The clash's case was opened before the subscription; announced only after it (the
    # service's deliverer collects once a second, later on a busy machine), it would be
    # queued for the subscription too. Announced now, it is not: the subscription is new.
    notify.collect(api.app.state.registry.store)  # type: ignore[attr-defined]
    made = api.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook", "work": WORK})
    assert made.status_code == 201
    sub = made.json()
    assert sub["secret"].startswith("whsec_") and sub["work"] == WORK
    path = f"/v1/subscriptions/{sub['id']}"
    assert api.get(path).status_code == 401
    assert api.get(path, headers={"Authorization": "Bearer whsec_nope"}).status_code == 403
    seen = api.get(path, headers={"Authorization": f"Bearer {sub['secret']}"}).json()
    assert seen["secret"] is None and seen["url"] == "http://127.0.0.1:9/hook"
    assert seen["deliveries"] == {"pending": 0, "delivered": 0, "failed": 0}
    assert api.delete(path).status_code == 401
    assert api.delete(path, headers={"Authorization": "Bearer whsec_nope"}).status_code == 403
    gone = api.delete(path, headers={"Authorization": f"Bearer {sub['secret']}"})
    assert gone.status_code == 204
    assert api.delete(path, headers={"Authorization": f"Bearer {sub['secret']}"}).status_code == 404
    assert api.delete("/v1/subscriptions/not-an-id").status_code == 422


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"url": "ftp://example.org/"}, 400, "http:// or https://"),
        ({"url": "http://user:pw@example.org/"}, 400, "user name"),
        ({"url": "http://example.org/", "kind": "Not A Kind"}, 422, "kind"),
        ({"url": "http://example.org/", "work": "ISCC:nope"}, 422, "work"),
        ({"url": "http://example.org/" + "a" * 3000}, 422, "url"),
        ({}, 422, "url"),
    ],
)
def test_bad_subscriptions_are_refused(
    api: TestClient, body: dict[str, object], status: int, words: str
) -> None:
    answer = api.post("/v1/subscriptions", json=body)
    assert answer.status_code == status
    assert words in answer.json()["message"]


def test_private_addresses_need_the_setting(
    tmp_path: Path, ledger_store: Store, clash: Ledger
) -> None:
    with _client(tmp_path, ledger_store) as strict:
        answer = strict.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"})
    assert answer.status_code == 400 and "non-public address" in answer.json()["message"]


def test_subscriptions_are_limited_per_client_and_in_rate(
    tmp_path: Path, ledger_store: Store
) -> None:
    with _client(
        tmp_path, ledger_store, webhook_allow_private=True, subscriptions_per_creator=3
    ) as client:
        codes = [
            client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/"}).status_code
            for _ in range(12)
        ]
    assert codes[:3] == [201, 201, 201]
    assert codes[3] == 403
    # Ten attempts a minute, made or refused, then the rate limit.
    assert codes[10:] == [429, 429]


def test_a_subscription_body_larger_than_the_limit_is_refused_before_parsing(
    tmp_path: Path, ledger_store: Store
) -> None:
    with _client(tmp_path, ledger_store, max_body_kb=1) as client:
        answer = client.post(
            "/v1/subscriptions",
            content=b'{"url": "' + b"a" * 4096 + b'"}',
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 413


def test_the_service_announces_new_cases_by_itself(
    api: TestClient, ledger_store: Store, clash: Ledger
) -> None:
    """The app's own delivery loop turns the case into a notice (no call needed)."""
    deadline = time.monotonic() + 30
    while not notify.notices_after(ledger_store, 0):
        assert time.monotonic() < deadline, "no notice within 30 s"
        time.sleep(0.1)
    (notice,) = notify.notices_after(ledger_store, 0)
    assert notice["case"]["id"] == clash.case_id and notice["type"] == "case.opened"


def test_metrics_count_the_outbox_by_status(
    api: TestClient, ledger_store: Store, clash: Ledger
) -> None:
    api.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"})
    with ledger_store._write() as conn:
        notify.record_notice(
            conn, case_id="0x" + "ee" * 32, case_seq=0, opened=True, kind="unlicensed_use",
            works=[WORK], parties=[], case={}, event={},
        )  # fmt: skip
    text = api.get("/metrics").text
    assert re.search(r'iscc_registry_webhook_deliveries\{status="(pending|failed)"\} 1\.0', text)
    assert 'iscc_registry_webhook_deliveries{status="delivered"} 0.0' in text
    assert "iscc_registry_event_streams 0.0" in text
