"""Usage reports and case responses as the service takes them: a signed note in, verified
against this registry's notes domain, stored, and the answer a reporter or party needs.

For a usage report that answer is the declared work the file was matched to and whether a
valid grant covers the use right now; licence detection (registry.ledger.licence_conflicts)
judges the stored report again in the indexer and opens the `unlicensed_use` case, so both
read the same rules: this module asks them, it does not restate them.
"""

from __future__ import annotations

from typing import Any

from registry.errors import ChainUnavailable, InvalidNote
from registry.ledger import cases
from registry.ledger.licence_conflicts import store_usage_report
from registry.ledger.licence_findings import usage_coverage
from registry.ledger.notes import Action, CaseResponse, NotesDomain, SignedNote, UsageReport
from registry.search.similarity import SimilarityIndex
from registry.store.licences import UsageRecord
from registry.store.store import Store

__all__ = ["coverage", "notes_domain", "parse_note", "respond", "take_usage_report"]

_STEPS = {
    Action.ACKNOWLEDGE: cases.acknowledge,
    Action.DISPUTE: cases.dispute,
    Action.RESOLVE: cases.resolve,
    Action.WITHDRAW: cases.withdraw,
}


def notes_domain(chain_id: int | None, licences: str | None) -> NotesDomain:
    """This registry's notes domain: its chain and LicenceRegistry; ChainUnavailable when the
    service knows no licence ledger (an old deployment file, or none)."""
    if chain_id is None or not licences:
        raise ChainUnavailable(
            "this registry has no licence ledger deployed: it takes no signed notes"
        )
    return NotesDomain(chain_id, licences)


def parse_note(data: Any, kind: type[UsageReport] | type[CaseResponse]) -> SignedNote:
    """A signed note of `kind` from its JSON form (not yet verified)."""
    signed = SignedNote.from_json(data)
    if not isinstance(signed.note, kind):
        raise InvalidNote(f"expected a signed {kind.TYPE}, not a {signed.kind}")
    return signed


def coverage(store: Store, usage: UsageRecord) -> dict[str, Any]:
    """Whether a valid grant covers a stored usage report now: the works considered (the
    matched one and those it copies or contains), the grants over them, which are invalid
    (their grantor had no right) and which cover the use (detection's own rules:
    registry.ledger.licence_findings.usage_coverage)."""
    with store._read() as conn:
        return usage_coverage(conn, usage)


def take_usage_report(
    store: Store,
    signed: SignedNote,
    chain_id: int,
    contract: str,
    similarity: SimilarityIndex | None,
) -> dict[str, Any]:
    """Store a verified usage report (the caller checked its signature) and answer with the
    work it is about and whether it is licensed; UsageReplayed for a nonce used before."""
    report = signed.note
    assert isinstance(report, UsageReport)
    record = store_usage_report(
        store,
        chain_id=chain_id,
        contract=contract,
        reporter=report.reporter,
        iscc_code_raw=report.iscc_code,
        datahash=report.datahash,
        territory=report.territory,
        use=int(report.use),
        used_at=report.used_at,
        nonce=report.nonce,
        signature=signed.signature,
        digest=signed.digest(),
        similarity=similarity,
    )
    answer = record.to_dict()
    return {
        "report": answer,
        "work": record.iscc_id,
        "match": answer["match"],
        **coverage(store, record),
    }


def respond(store: Store, case_id: str, signed: SignedNote) -> dict[str, Any]:
    """Take a party's verified response to case `case_id` (the one the note names) and
    answer with the case as it is now."""
    response = signed.note
    assert isinstance(response, CaseResponse)
    named = "0x" + response.case_id.hex()
    if named != case_id.lower():
        raise InvalidNote(f"the response is signed for case {named}, not for {case_id}")
    by = cases.SignedBy(response.party, response.signed_at, signed.signature, signed.digest())
    _STEPS[response.action](store, named, by, response.note)
    return cases.get_case(store, named)
