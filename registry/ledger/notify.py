"""Notifications of cases: the feed of notices, webhook subscriptions and their outbox.

When a case opens or changes (a row in the cases' event log), `collect` writes one notice
(numbered by the store: the feed's event id) and, in the same transaction, one outbox row per
matching subscription. A `Deliverer` posts due outbox rows (registry.ledger.webhooks), retries
failures with exponential backoff up to a cap and a number of attempts, and keeps every
attempt's outcome in the store, so a restarted service goes on where the last one stopped. The
server-sent-events feed reads the same notices (`notices_after`).
"""

from __future__ import annotations

import hmac
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from registry.chain.iscc_id import IsccId
from registry.config import Settings
from registry.errors import Forbidden, InputError, InvalidCode, NotFound
from registry.ledger import webhooks
from registry.store.schema import deliveries, notices, subscriptions
from registry.store.store import Store

__all__ = [
    "NOTICE_TYPES",
    "Deliverer",
    "DeliveryPolicy",
    "collect",
    "deliveries_of",
    "latest_notice",
    "matching_notices",
    "notice_body",
    "notices_after",
    "outbox_counts",
    "record_notice",
    "subscribe",
    "subscription",
    "unsubscribe",
]

log = logging.getLogger(__name__)

NOTICE_TYPES = ("case.opened", "case.changed")
MAX_FILTER = 80
SUBSCRIPTION_PREFIX = "sub_"


GONE = 410
"""A receiver's answer that ends its subscription (registry.ledger.notify.Deliverer)."""


def _now() -> int:
    return int(time.time())


# -- notices ----------------------------------------------------------------------------------


def record_notice(
    conn: Connection,
    *,
    case_id: str,
    case_seq: int,
    opened: bool,
    kind: str,
    works: Sequence[str],
    parties: Sequence[str],
    case: dict[str, Any],
    event: dict[str, Any],
    created: int | None = None,
) -> int | None:
    """Record that case `case_id` opened (`opened`) or changed, inside the caller's
    transaction, and queue it for every matching subscription. Returns the notice id, or None
    when this case event was recorded before (collecting twice announces once)."""
    known = conn.execute(
        select(notices.c.id).where(notices.c.case_id == case_id, notices.c.case_seq == case_seq)
    ).scalar()
    if known is not None:
        return None
    created = _now() if created is None else created
    notice_type = "case.opened" if opened else "case.changed"
    notice_id = conn.execute(
        notices.insert()
        .values(
            type=notice_type,
            case_id=case_id,
            case_seq=case_seq,
            kind=kind,
            works=json.dumps(sorted(works)),
            parties=json.dumps(sorted(parties)),
            payload=json.dumps({"case": case, "event": event}, sort_keys=True),
            created=created,
        )
        .returning(notices.c.id)
    ).scalar_one()
    matching = conn.execute(
        select(subscriptions.c.id).where(
            or_(subscriptions.c.case_id.is_(None), subscriptions.c.case_id == case_id),
            or_(subscriptions.c.kind.is_(None), subscriptions.c.kind == kind),
            or_(subscriptions.c.work.is_(None), subscriptions.c.work.in_(list(works) or [""])),
        )
    ).scalars()
    rows = [
        {
            "subscription_id": sid,
            "notice_id": notice_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt": float(created),
        }
        for sid in matching
    ]
    if rows:
        conn.execute(deliveries.insert(), rows)
    return int(notice_id)


COLLECT_BATCH = 500


def _unannounced(conn: Connection, limit: int) -> list[Any]:
    """Case events that have no notice yet, oldest first."""
    from registry.store.schema import case_events

    announced = select(notices.c.id).where(
        notices.c.case_id == case_events.c.case_id, notices.c.case_seq == case_events.c.seq
    )
    return conn.execute(
        select(case_events)
        .where(~announced.exists())
        .order_by(case_events.c.at, case_events.c.case_id, case_events.c.seq)
        .limit(limit)
    ).all()


def _case_view(conn: Connection, case_id: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """A case as notices show it, with its works and parties."""
    from registry.store.schema import case_parties, cases, licence_conflicts

    row = conn.execute(
        select(cases, licence_conflicts.c.iscc_id, licence_conflicts.c.other_iscc_id)
        .join(licence_conflicts, licence_conflicts.c.id == cases.c.conflict_id)
        .where(cases.c.id == case_id)
    ).one()
    works = sorted({w for w in (row.iscc_id, row.other_iscc_id) if w})
    parties = sorted(
        conn.execute(select(case_parties.c.party).where(case_parties.c.case_id == case_id))
        .scalars()
        .all()
    )
    case = {
        "id": case_id,
        "kind": row.kind,
        "state": row.state,
        "works": works,
        "parties": parties,
        "opened_at": int(row.opened_at),
        "deadline": int(row.deadline),
        "closed_reason": row.closed_reason,
    }
    return case, works, parties


def collect(store: Store) -> int:
    """Turn case events not announced yet into notices (and outbox rows); returns how many.
    Reads first, so an idle service writes nothing; safe to run from several processes at once
    (a case event is announced once: unique key)."""
    with store._read() as conn:
        if not _unannounced(conn, 1):
            return 0
    count = 0
    with store._write() as conn:
        views: dict[str, tuple[dict[str, Any], list[str], list[str]]] = {}
        for event in _unannounced(conn, COLLECT_BATCH):
            if event.case_id not in views:
                views[event.case_id] = _case_view(conn, event.case_id)
            case, works, parties = views[event.case_id]
            notice = record_notice(
                conn,
                case_id=event.case_id,
                case_seq=int(event.seq),
                opened=event.action == "open",
                kind=case["kind"],
                works=works,
                parties=parties,
                # The case as this step left it, not as it is by the time of collecting.
                case={**case, "state": event.state},
                event={
                    "seq": int(event.seq),
                    "at": int(event.at),
                    "actor": event.actor,
                    "action": event.action,
                    "state": event.state,
                    "note": event.note,
                },
            )
            count += notice is not None
    return count


def _notice_dict(row: Any) -> dict[str, Any]:
    payload = json.loads(row.payload)
    return {
        "id": int(row.id),
        "type": row.type,
        "created": int(row.created),
        "case": payload["case"],
        "event": payload["event"],
    }


def notice_body(notice: dict[str, Any]) -> bytes:
    """The exact bytes sent for a notice (webhook body, SSE data line): compact JSON, keys
    sorted, so the same notice is the same bytes on every attempt."""
    return json.dumps(notice, sort_keys=True, separators=(",", ":")).encode()


def notices_after(store: Store, last_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """Notices numbered above `last_id`, oldest first (a feed client resuming)."""
    return matching_notices(store, last_id, limit)[0]


def matching_notices(
    store: Store,
    last_id: int,
    limit: int,
    *,
    case_id: str | None = None,
    work: str | None = None,
    kind: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Notices above `last_id` that match every filter given, oldest first, at most `limit`,
    and the position a reader has reached: the last one returned, or the newest notice when
    fewer than `limit` matched. The store filters: a stream replaying from the start with a
    filter nothing matches reads no rows into the service (the case filter has an index)."""
    case_id, work = _filter(case_id, "case"), _filter(work, "work")
    query = select(notices).where(notices.c.id > last_id)
    if case_id is not None:
        query = query.where(notices.c.case_id == case_id)
    if kind is not None:
        query = query.where(notices.c.kind == kind)
    if work is not None:
        # `works` is a JSON list of ISCC-IDs: the quoted ID matches one element exactly.
        query = query.where(notices.c.works.contains(json.dumps(work), autoescape=True))
    with store._read() as conn:
        newest = int(conn.execute(select(func.max(notices.c.id))).scalar() or 0)
        rows = conn.execute(
            query.where(notices.c.id <= newest).order_by(notices.c.id).limit(limit)
        ).all()
    found = [_notice_dict(row) for row in rows]
    return found, found[-1]["id"] if len(found) == limit else max(newest, last_id)


def latest_notice(store: Store) -> int:
    """The highest notice id so far (0: none)."""
    with store._read() as conn:
        return int(conn.execute(select(func.max(notices.c.id))).scalar() or 0)


# -- subscriptions ----------------------------------------------------------------------------


def _filter(value: str | None, what: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_FILTER or not value.isprintable():
        raise InputError(f"the {what} filter is not a valid identifier")
    if what == "case":
        return value.lower()  # case ids are stored in lower-case hex
    if what == "work":
        try:  # stored canonical: "ISCC:" and upper case, whatever form the filter came in
            return str(IsccId.parse(value))
        except InvalidCode as exc:
            raise InputError(f"the work filter is not an ISCC-ID: {exc}") from None
    return value


def subscribe(
    store: Store,
    settings: Settings,
    url: str,
    creator: str,
    *,
    case_id: str | None = None,
    work: str | None = None,
    kind: str | None = None,
) -> dict[str, Any]:
    """A new webhook subscription of `creator` (the client's address): its id and the secret
    its deliveries are signed with (shown this once). The URL must be one the service may post
    to (registry.ledger.webhooks.check_url); a creator holds a bounded number."""
    webhooks.check_url(url, settings.webhook_allow_private)
    filters = {
        "case_id": _filter(case_id, "case"),
        "work": _filter(work, "work"),
        "kind": _filter(kind, "kind"),
    }
    sid = SUBSCRIPTION_PREFIX + secrets.token_hex(12)
    secret = "whsec_" + secrets.token_urlsafe(32)
    created = _now()
    with store._write() as conn:
        held = conn.execute(
            select(func.count())
            .select_from(subscriptions)
            .where(subscriptions.c.creator == creator)
        ).scalar_one()
        if held >= settings.subscriptions_per_creator:
            raise Forbidden(
                f"this client holds {held} subscriptions, the most this service keeps for one; "
                "delete one first"
            )
        conn.execute(
            subscriptions.insert().values(
                id=sid,
                url=url,
                secret=secret,
                creator=creator,
                created=created,
                **filters,
            )
        )
    return {"id": sid, "url": url, "secret": secret, "created": created, **filters}


def _owned(conn: Connection, sid: str, secret: str) -> Any:
    row = conn.execute(select(subscriptions).where(subscriptions.c.id == sid)).first()
    # The same answer for "no such subscription" and "wrong secret" would hide which ids
    # exist; but ids are 96 random bits, unguessable, so the clearer answer costs nothing.
    if row is None:
        raise NotFound(f"no subscription {sid}")
    if not hmac.compare_digest(row.secret.encode(), secret.encode()):
        raise Forbidden("this is not the secret of that subscription")
    return row


def subscription(store: Store, sid: str, secret: str) -> dict[str, Any]:
    """A subscription and the state of its deliveries, for the holder of its secret."""
    with store._read() as conn:
        row = _owned(conn, sid, secret)
        counts = dict(
            conn.execute(
                select(deliveries.c.status, func.count())
                .where(deliveries.c.subscription_id == sid)
                .group_by(deliveries.c.status)
            ).all()
        )
    return {
        "id": row.id,
        "url": row.url,
        "case_id": row.case_id,
        "work": row.work,
        "kind": row.kind,
        "created": int(row.created),
        "deliveries": {s: int(counts.get(s, 0)) for s in ("pending", "delivered", "failed")},
    }


def unsubscribe(store: Store, sid: str, secret: str) -> None:
    """Delete a subscription and its undelivered outbox rows; only with its secret."""
    with store._write() as conn:
        _owned(conn, sid, secret)
        conn.execute(delete(deliveries).where(deliveries.c.subscription_id == sid))
        conn.execute(delete(subscriptions).where(subscriptions.c.id == sid))


def deliveries_of(store: Store, sid: str) -> list[dict[str, Any]]:
    """Every outbox row of a subscription, oldest notice first (for tests and operators)."""
    with store._read() as conn:
        rows = conn.execute(
            select(deliveries)
            .where(deliveries.c.subscription_id == sid)
            .order_by(deliveries.c.notice_id)
        ).all()
    return [dict(row._mapping) for row in rows]


# -- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard the service tries: attempts, the backoff and its cap, the per-attempt deadline,
    and whether private addresses may be posted to."""

    max_attempts: int = 8
    backoff_s: float = 30.0
    backoff_cap_s: float = 6 * 3600.0
    timeout_s: float = 10.0
    allow_private: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            max_attempts=settings.webhook_max_attempts,
            backoff_s=settings.webhook_backoff_s,
            backoff_cap_s=settings.webhook_backoff_cap_s,
            timeout_s=settings.webhook_timeout_s,
            allow_private=settings.webhook_allow_private,
        )

    def delay(self, attempts: int) -> float:
        """Seconds before the next attempt after `attempts` failed ones: doubling, capped, with
        up to a tenth more at random so receivers that came back are not hit all at once."""
        base = min(self.backoff_cap_s, self.backoff_s * 2 ** (attempts - 1))
        return base * (1 + random.random() / 10)

    @property
    def lease_s(self) -> float:
        """How long a claimed row stays with its sender: past it, a crashed sender's row is
        due again."""
        return 2 * self.timeout_s + 30


@dataclass(frozen=True)
class _Due:
    id: int
    subscription_id: str
    url: str
    secret: str
    attempts: int
    notice: dict[str, Any]


class Deliverer:
    """Posts due outbox rows: `run` until stopped (the service's thread), or `deliver_due` once.

    Rows are claimed by moving their `next_attempt` past a lease before posting, so several
    service processes on one store never post a row twice at once, and a row whose sender died
    mid-post is due again when its lease runs out.
    """

    def __init__(
        self, store: Store, policy: DeliveryPolicy, workers: int = 4, batch: int = 50
    ) -> None:
        self.store = store
        self.policy = policy
        self.batch = batch
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook")

    def _claim(self, now: float) -> list[_Due]:
        # A read first: an idle service takes no write lock twice a second.
        with self.store._read() as conn:
            due = conn.execute(
                select(func.min(deliveries.c.next_attempt)).where(deliveries.c.status == "pending")
            ).scalar()
        if due is None or due > now:
            return []
        with self.store._write() as conn:
            rows = conn.execute(
                select(
                    # Labelled: the notice's own `id` is read from the same row.
                    deliveries.c.id.label("delivery_id"),
                    deliveries.c.subscription_id,
                    deliveries.c.attempts,
                    deliveries.c.next_attempt,
                    subscriptions.c.url,
                    subscriptions.c.secret,
                    notices,
                )
                .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
                .join(notices, notices.c.id == deliveries.c.notice_id)
                .where(deliveries.c.status == "pending", deliveries.c.next_attempt <= now)
                .order_by(deliveries.c.next_attempt, deliveries.c.id)
                .limit(self.batch)
            ).all()
            claimed = []
            for row in rows:
                taken = conn.execute(
                    update(deliveries)
                    .where(
                        and_(
                            deliveries.c.id == row.delivery_id,
                            deliveries.c.next_attempt == row.next_attempt,
                            deliveries.c.status == "pending",
                        )
                    )
                    .values(next_attempt=now + self.policy.lease_s)
                ).rowcount
                if taken:
                    claimed.append(
                        _Due(
                            int(row.delivery_id),
                            row.subscription_id,
                            row.url,
                            row.secret,
                            int(row.attempts),
                            _notice_dict(row),
                        )
                    )
        return claimed

    def _attempt(self, due: _Due) -> webhooks.Outcome:
        body = notice_body(due.notice)
        stamp = _now()
        headers = {
            webhooks.TIMESTAMP_HEADER: str(stamp),
            webhooks.SIGNATURE_HEADER: webhooks.sign(due.secret, stamp, body),
            "X-Registry-Event": due.notice["type"],
            "X-Registry-Delivery": str(due.id),
            "X-Registry-Subscription": due.subscription_id,
        }
        return webhooks.post(
            due.url, body, headers, self.policy.timeout_s, self.policy.allow_private
        )

    def _record(self, due: _Due, outcome: webhooks.Outcome) -> float | None:
        attempts = due.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status": outcome.status,
            "last_error": outcome.error,
        }
        if outcome.delivered:
            values |= {"status": "delivered", "delivered": _now()}
        elif attempts >= self.policy.max_attempts:
            values["status"] = "failed"
        else:
            values["next_attempt"] = time.time() + self.policy.delay(attempts)
        with self.store._write() as conn:
            conn.execute(update(deliveries).where(deliveries.c.id == due.id).values(**values))
        return values.get("next_attempt")

    def _release(self, rest: list[_Due], at: float) -> None:
        """Put claimed rows back, due at `at`, without counting an attempt."""
        with self.store._write() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_([due.id for due in rest]))
                .values(next_attempt=at)
            )

    def _post_group(self, group: list[_Due]) -> None:
        """Post one subscription's claimed notices in order, until one fails: the receiver is
        down or slow, so the rest wait for that notice's retry instead of each taking a
        timeout. Otherwise a few slow receivers held every worker for minutes and healthy
        subscribers waited behind them (review finding: 10 s for 10 notices)."""
        for k, due in enumerate(group):
            outcome = self._attempt(due)
            if outcome.status == GONE:
                self._end(due.subscription_id, due.url)
                return
            if not outcome.delivered:
                log.info("webhook %s to %s failed: %s", due.id, due.url, outcome.error)
            retry = self._record(due, outcome)
            if not outcome.delivered:
                if group[k + 1 :]:
                    at = retry if retry is not None else time.time() + self.policy.backoff_s
                    self._release(group[k + 1 :], at)
                return

    def _end(self, sid: str, url: str) -> None:
        """The receiver answered 410 Gone: it wants no more posts, now or on retries. Its
        subscription and every delivery still waiting for it are deleted, as if its creator
        had unsubscribed."""
        log.info("webhook receiver %s answered 410 Gone: subscription %s ended", url, sid)
        with self.store._write() as conn:
            conn.execute(delete(deliveries).where(deliveries.c.subscription_id == sid))
            conn.execute(delete(subscriptions).where(subscriptions.c.id == sid))

    def deliver_due(self, now: float | None = None) -> int:
        """One round: claim what is due, post it, record each outcome. Subscriptions are posted
        to side by side, each one's notices in their order until one fails. Returns how many
        rows were claimed."""
        claimed = self._claim(time.time() if now is None else now)
        groups: dict[str, list[_Due]] = {}
        for due in sorted(claimed, key=lambda d: d.notice["id"]):
            groups.setdefault(due.subscription_id, []).append(due)
        list(self._pool.map(self._post_group, groups.values()))
        return len(claimed)

    def run(self, stop: threading.Event, interval_s: float = 0.5) -> None:
        """Collect new case events and deliver what is due until `stop` is set. Store trouble
        is waited out: the outbox keeps everything until the next round."""
        while not stop.is_set():
            try:
                collect(self.store)
                busy = self.deliver_due()
            except Exception:  # a broken round must not end notifications for good
                log.exception("notification round failed")
                busy = 0
            if not busy:
                stop.wait(interval_s)
        self._pool.shutdown(wait=False, cancel_futures=True)


def outbox_counts(store: Store) -> dict[str, int]:
    """Outbox rows by status (pending, delivered, failed), for the service's metrics."""
    with store._read() as conn:
        found = dict(
            conn.execute(
                select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
            ).all()
        )
    return {status: int(found.get(status, 0)) for status in ("pending", "delivered", "failed")}
