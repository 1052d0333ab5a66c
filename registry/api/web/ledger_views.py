"""The licence ledger in words for the pages: licence states, conflict kinds, case states and
case steps, as a reader who never saw the vocabulary understands them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = [
    "case_headline",
    "from_unix",
    "kind_text",
    "licence_status_text",
    "step_text",
]

_KINDS = {
    "exclusive_overlap": "An exclusive licence overlaps another licence",
    "grantor_not_owner": "Granted by someone who did not own the work then",
    "grantor_not_priority": "Granted by a later declarer of this content",
    "work_contains_earlier": "The licensed work contains an earlier work of another declarer",
    "sublicence_exceeds": "A sublicence goes beyond its parent licence",
    "unlicensed_use": "A use that no licence covers",
}

_STATUS = {
    "active": "In force",
    "pending": "Not yet in force",
    "ended": "Ended",
    "terminated": "Terminated",
}

_STEPS = {
    "open": "Opened",
    "acknowledge": "Acknowledged",
    "dispute": "Disputed",
    "resolve": "Resolved",
    "withdraw": "Withdrawn",
    "expire": "Expired",
}


def kind_text(kind: str) -> str:
    """A conflict kind as a sentence."""
    return _KINDS.get(kind, kind.replace("_", " ").capitalize())


def licence_status_text(status: str) -> str:
    return _STATUS.get(status, status.capitalize())


def step_text(action: str) -> str:
    return _STEPS.get(action, action.capitalize())


def from_unix(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def case_headline(case: dict[str, Any]) -> str:
    """One sentence on where a case stands."""
    state = case["state"]
    if state == "open":
        return "Open: waiting for the parties to answer."
    if state == "acknowledged":
        return "Acknowledged: a party accepts the conflict is real and will settle it."
    if state == "disputed":
        return "Disputed: a party says the conflict is not what the registry found."
    reason = case.get("closed_reason") or ""
    if state == "resolved":
        return f"Resolved: {reason}." if reason else "Resolved."
    if state == "withdrawn":
        return f"Withdrawn: {reason}." if reason else "Withdrawn."
    return "Expired: nobody answered by the deadline."
