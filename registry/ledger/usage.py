"""Usage reports and case responses as the service takes them: a signed note in, verified
against this registry's notes domain, stored, and the answer a reporter or party needs.

For a usage report that answer is the declared work the file was matched to and whether a
valid grant covers the use right now; licence detection (registry.ledger.licence_conflicts)
judges the stored report again in the indexer and opens the `unlicensed_use` case, so both
read the same rules: this module asks them, it does not restate them.
"""

from __future__ import annotations

from typing import Any

from registry.chain.deployment import Deployment
from registry.errors import ChainUnavailable, InvalidNote
from registry.ledger import cases
from registry.ledger.licence_conflicts import report_usage
from registry.ledger.licence_findings import terms_of, usage_coverage
from registry.ledger.notes import CaseResponse, NotesDomain, SignedNote, UsageReport, WalletCheck
from registry.ledger.rules import Usage, unlicensed
from registry.ledger.terms import Use
from registry.search.similarity import SimilarityIndex
from registry.store.licences import UsageRecord
from registry.store.store import Store

__all__ = ["coverage", "notes_domain", "parse_note", "respond", "take_usage_report"]


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
    """Whether a valid grant covers a stored usage report now, by detection's own rules
    (registry.ledger.licence_findings.usage_coverage: the works considered, the grants over
    them, which are invalid and which cover the use), and, when none does, why each valid
    grant falls short (registry.ledger.rules.unlicensed)."""
    with store._read() as conn:
        answer = usage_coverage(conn, usage)
    answer["misses"] = []
    if answer["licensed"] is False:
        invalid = set(answer["invalid_grants"])
        valid = [
            grant
            for grant_id in answer["grants_considered"]
            if grant_id not in invalid
            and (grant := store.grant(grant_id, usage.chain_id, usage.contract)) is not None
        ]
        use = Usage(usage.territory, Use(usage.use), usage.used_at, usage.reporter, usage.iscc_id)
        ended = {g.grant_id: g.terminated_time for g in valid if g.terminated_time is not None}
        uncovered = unlicensed(use, [terms_of(g) for g in valid], ended=ended)
        if uncovered is not None:
            answer["misses"] = uncovered.to_json()["grants"]
    return answer


def take_usage_report(
    store: Store,
    signed: SignedNote,
    deployment: Deployment,
    similarity: SimilarityIndex | None,
    wallet: WalletCheck | None = None,
) -> dict[str, Any]:
    """Verify and store a usage report (registry.ledger.licence_conflicts.report_usage) and
    answer with the work it is about and whether it is licensed; UsageReplayed for a nonce
    used before."""
    record = report_usage(store, deployment, signed, similarity, wallet=wallet)
    answer = record.to_dict()
    return {
        "report": answer,
        "work": record.iscc_id,
        "match": answer["match"],
        **coverage(store, record),
    }


def respond(
    store: Store,
    case_id: str,
    signed: SignedNote,
    domain: NotesDomain,
    wallet: WalletCheck | None = None,
) -> dict[str, Any]:
    """Take a party's response to case `case_id`, which must be the case the note is signed
    for (registry.ledger.cases.respond checks the rest), and answer with the case as it is
    now."""
    response = signed.note
    if not isinstance(response, CaseResponse):
        raise InvalidNote(f"a case takes CaseResponse notes, not {response.TYPE}")
    named = "0x" + response.case_id.hex()
    if named != case_id.lower():
        raise InvalidNote(f"the response is signed for case {named}, not for {case_id}")
    cases.respond(store, signed, domain, wallet=wallet)
    return cases.get_case(store, named)
