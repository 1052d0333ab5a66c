"""`license list`, `usage report` and `cases list|show|respond`: the licence ledger from the
command line, read from the local store; signed notes go to the local store or, with --via, to
a registry service."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from registry.cli.common import (
    JsonOpt,
    KeyOpt,
    PasswordFileOpt,
    cases_app,
    err,
    get_settings,
    license_app,
    load_key,
    open_store,
    out,
    print_json,
    usage_app,
)
from registry.errors import InputError

if TYPE_CHECKING:
    from registry.config import Settings
    from registry.ledger.notes import NotesDomain, SignedNote

ViaOpt = Annotated[
    str | None,
    typer.Option(metavar="URL", help="Send it to this registry service instead of the local store"),
]
_STATE_STYLE = {
    "active": "green",
    "pending": "yellow",
    "ended": "dim",
    "terminated": "red",
    "open": "red",
    "acknowledged": "yellow",
    "disputed": "magenta",
    "resolved": "green",
    "withdrawn": "dim",
    "expired": "dim",
}


def _day(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _styled(state: str) -> str:
    style = _STATE_STYLE.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def _domain(settings: Settings) -> tuple[NotesDomain, Any]:
    """The notes domain of the deployment file (its chain and LicenceRegistry)."""
    from registry.chain.deployment import Deployment
    from registry.ledger.usage import notes_domain

    deployment = Deployment.load(settings.deployment_path)
    return notes_domain(deployment.chain_id, deployment.licences), deployment


@license_app.command("list")
def license_list(
    work: Annotated[str, typer.Argument(metavar="ISCC_ID", help="The declaration's ISCC-ID")],
    via: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Ask this registry service instead of the local index"),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The licences granted over a work (from the index): who holds each one, where, for
    what use, when, exclusive or not, and where it stands."""
    from rich.table import Table

    from registry.chain.iscc_id import IsccId

    canonical = str(IsccId.parse(work))  # refused before the store is opened
    if via:
        licences = _remote_licences(via, canonical)
    else:
        from registry.ledger.licence_views import work_licences

        licences = work_licences(open_store(get_settings(), create=False), canonical)
    if json_out:
        print_json({"iscc_id": canonical, "licences": licences})
        return
    if not licences:
        out.print(f"no licence granted over {canonical}", highlight=False)
        return
    out.print(f"{len(licences)} licence(s) over [bold]{canonical}[/bold]\n", highlight=False)
    table = Table(header_style="bold", pad_edge=False)
    for column in (
        "licensee",
        "territories",
        "uses",
        "period",
        "exclusive",
        "sublicensable",
        "status",
    ):
        table.add_column(column, overflow="fold")
    for licence in licences:
        status = _styled(licence["status"])
        for conflict in licence["conflicts"]:
            status += f"\nin conflict: {conflict['kind']}"
        who = licence["who"] + ("\n(sublicence)" if licence["sublicence"] else "")
        table.add_row(
            who,
            licence["where"],
            ", ".join(licence["what"]),
            licence["when"],
            "yes" if licence["exclusive"] else "no",
            "yes" if licence["sublicensable"] else "no",
            status,
        )
    out.print(table)
    out.print("grant ids, in the table's order:", highlight=False)
    for licence in licences:
        out.print(f"  {licence['grant_id']}  by {licence['grantor']}", highlight=False)


REMOTE_LICENCES = 100_000
"""Most licences `license list --via` reads: a service that always says `truncated` (hostile,
or a proxy answering one page again) must not keep the command going for ever."""


def _remote_licences(via: str, iscc_id: str) -> list[dict[str, Any]]:
    """The licences over `iscc_id` from a service, a page at a time, up to REMOTE_LICENCES;
    stops early at a page that brings nothing new."""
    from registry.api.client import ServiceClient

    client, found, seen = ServiceClient(via), [], set()
    while len(found) < REMOTE_LICENCES:
        _status, page = client.request(
            "GET", f"/v1/works/{iscc_id}/licences", params={"limit": 1000, "offset": len(found)}
        )
        new = [g for g in page["licences"] if g["grant_id"] not in seen]
        seen.update(g["grant_id"] for g in new)
        found += new
        if not page["truncated"] or not new:
            return found
    err.print(f"the first {REMOTE_LICENCES:,} licences; the service has more")
    return found


@usage_app.command("report")
def usage_report(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The file you used", readable=False)],
    territory: Annotated[
        str, typer.Option(metavar="CODE", help="Where: an ISO 3166-1 country code, e.g. DE")
    ],
    use: Annotated[
        str, typer.Option(metavar="USE", help="How: a use of the vocabulary, e.g. svod")
    ],
    key: KeyOpt,
    date: Annotated[
        str | None,
        typer.Option(metavar="DATE", help="When: YYYY-MM-DD or an ISO time (default: now)"),
    ] = None,
    nonce: Annotated[
        int | None,
        typer.Option(min=0, help="The report's nonce (default: a random one); used once"),
    ] = None,
    via: ViaOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Report that you used FILE: signs a usage report with your key and records it. The
    answer names the declared work FILE is (or copies, or is an excerpt of) and whether a
    valid grant covers the use; an uncovered use opens an unlicensed-use case."""
    from registry.iscc.generate import generate
    from registry.ledger import notes
    from registry.ledger.notes import UsageReport

    settings = get_settings()
    domain, deployment = _domain(settings)
    account = load_key(settings, key, password_file)
    used_at = date if date is not None else int(datetime.now(tz=UTC).timestamp())
    result = generate(file)
    report = UsageReport.create(
        account.address,
        result.iscc,
        result.datahash,
        territory,
        use,
        used_at,
        secrets.randbits(128) if nonce is None else nonce,
    )
    signed = notes.sign(report, domain, account)
    if via:
        from registry.api.client import ServiceClient

        _status, answer = ServiceClient(via).request("POST", "/v1/usage", signed.to_json())
    else:
        from registry.ledger.usage import take_usage_report
        from registry.search.similarity import SimilarityIndex

        with open_store(settings) as store:
            answer = take_usage_report(store, signed, deployment, SimilarityIndex(store))
    if json_out:
        print_json(answer)
        return
    _print_usage(answer, file)


def _print_usage(answer: dict[str, Any], file: Path) -> None:
    from registry.ledger.terms import Use, use_names

    report = answer["report"]
    uses = ", ".join(use_names(Use(report["use"])))
    out.print(
        f"reported: {uses} of {file} in {report['territory']} at {_day(report['used_at'])} "
        f"by {report['reporter']}",
        highlight=False,
    )
    if answer["work"] is None:
        out.print("no declared work matches this file: nothing to license", highlight=False)
        return
    how = (answer["match"] or {}).get("by", "?")
    out.print(f"work: [bold]{answer['work']}[/bold] (matched by {how})", highlight=False)
    if answer["licensed"]:
        out.print(
            "[green]licensed[/green] by " + ", ".join(answer["covering_grants"]), highlight=False
        )
    else:
        out.print(
            "[red]not licensed[/red]: no valid grant covers this use; an unlicensed_use case "
            "opens when the indexer next runs",
            highlight=False,
        )


@cases_app.command("list")
def cases_list(
    state: Annotated[
        str | None,
        typer.Option(
            metavar="STATE",
            help="open, acknowledged, disputed, resolved, withdrawn or expired",
        ),
    ] = None,
    work: Annotated[
        str | None, typer.Option(metavar="ISCC_ID", help="Only cases about this work")
    ] = None,
    party: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Only cases of this party")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most cases to show")] = 100,
    json_out: JsonOpt = False,
) -> None:
    """Cases of licence conflicts (from the index), newest first."""
    from rich.table import Table

    from registry.ledger import cases

    if state is not None and state not in cases.STATES:
        raise InputError(f"--state must be one of {', '.join(cases.STATES)}, not {state!r}")
    found = cases.list_cases(
        open_store(get_settings(), create=False),
        party=party,
        iscc_id=work,
        state=state,
        limit=limit,
    )
    if json_out:
        print_json(found)
        return
    if not found:
        out.print("no cases")
        return
    table = Table(header_style="bold", pad_edge=False)
    for column in ("case", "kind", "state", "works", "parties", "opened", "deadline"):
        table.add_column(column, overflow="fold")
    for case in found:
        conflict = case["conflict"] or {}
        works = [w for w in (conflict.get("iscc_id"), conflict.get("other_iscc_id")) if w]
        table.add_row(
            case["id"],
            case["kind"],
            _styled(case["state"]),
            "\n".join(dict.fromkeys(works)),
            "\n".join(f"{p['address']} ({p['role']})" for p in case["parties"]),
            _day(case["opened_at"]),
            _day(case["deadline"]),
        )
    out.print(table)


CaseArg = Annotated[str, typer.Argument(metavar="CASE", help="The case id (0x + 64 hex digits)")]


@cases_app.command("show")
def cases_show(case_id: CaseArg, json_out: JsonOpt = False) -> None:
    """One case: its conflict with the exact overlap, its parties and its timeline."""
    from registry.ledger import cases

    case = cases.get_case(open_store(get_settings(), create=False), case_id)
    if json_out:
        print_json(case)
        return
    _print_case(case)


def _print_case(case: dict[str, Any]) -> None:
    from rich.table import Table

    out.print(
        f"case [bold]{case['id']}[/bold]  {case['kind']}  {_styled(case['state'])}",
        highlight=False,
    )
    conflict = case["conflict"] or {}
    overlap = conflict.get("overlap") or {}
    if overlap.get("text"):
        out.print(f"  overlap: {overlap['text']}", highlight=False)
    for label, key in (
        ("work", "iscc_id"),
        ("other work", "other_iscc_id"),
        ("grant", "grant_id"),
        ("other grant", "other_grant_id"),
        ("usage report", "usage_id"),
    ):
        if conflict.get(key) is not None and not (
            key == "other_iscc_id" and conflict.get(key) == conflict.get("iscc_id")
        ):
            out.print(f"  {label}: {conflict[key]}", highlight=False)
    out.print(f"  opened {_day(case['opened_at'])}, answer by {_day(case['deadline'])}")
    if case["closed_reason"]:
        out.print(f"  closed: {case['closed_reason']}", highlight=False)
    for party in case["parties"]:
        out.print(f"  party: {party['address']} ({party['role']})", highlight=False)
    table = Table(header_style="bold", pad_edge=False, title="timeline", title_justify="left")
    for column in ("when", "who", "did", "state", "note"):
        table.add_column(column, overflow="fold")
    for step in case.get("events", []):
        table.add_row(
            _day(step["at"]),
            step["actor"] + (" (signed)" if step["signature"] else ""),
            step["action"],
            _styled(step["state"]),
            step["note"],
        )
    out.print(table)


@cases_app.command("respond")
def cases_respond(
    case_id: CaseArg,
    key: KeyOpt,
    acknowledge: Annotated[
        bool, typer.Option("--acknowledge", help="The conflict is real; you will settle it")
    ] = False,
    dispute: Annotated[
        bool, typer.Option("--dispute", help="The conflict is not what detection says")
    ] = False,
    resolve: Annotated[bool, typer.Option("--resolve", help="It is settled")] = False,
    withdraw: Annotated[bool, typer.Option("--withdraw", help="You give up your side")] = False,
    note: Annotated[str, typer.Option(metavar="TEXT", help="Your words, kept with the step")] = "",
    via: ViaOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Answer a case as one of its parties, signed with your key."""
    from registry.ledger import notes
    from registry.ledger.cases import parse_case_id
    from registry.ledger.notes import CaseResponse

    case_id = parse_case_id(case_id)  # before the deployment file, which a typo has no part in
    chosen = [
        name
        for name, flag in (
            ("acknowledge", acknowledge),
            ("dispute", dispute),
            ("resolve", resolve),
            ("withdraw", withdraw),
        )
        if flag
    ]
    if len(chosen) != 1:
        raise InputError("give exactly one of --acknowledge, --dispute, --resolve, --withdraw")
    settings = get_settings()
    domain, _deployment = _domain(settings)
    account = load_key(settings, key, password_file)
    response = CaseResponse.create(
        account.address, case_id, chosen[0], note, int(datetime.now(tz=UTC).timestamp())
    )
    signed: SignedNote = notes.sign(response, domain, account)
    named = "0x" + response.case_id.hex()
    if via:
        from registry.api.client import ServiceClient

        _status, case = ServiceClient(via).request(
            "POST", f"/v1/cases/{named}/responses", signed.to_json()
        )
    else:
        from registry.ledger.usage import respond

        with open_store(settings, create=False) as store:
            case = respond(store, named, signed, domain)
    if json_out:
        print_json(case)
        return
    _print_case(case)
    if chosen[0] in ("resolve", "withdraw") and case["state"] not in ("resolved", "withdrawn"):
        signed_by = {e["actor"] for e in case["events"] if e["action"] == chosen[0]}
        waiting = [p["address"] for p in case["parties"] if p["address"] not in signed_by]
        out.print(
            f"recorded: the case closes when every party has signed {chosen[0]} "
            f"(waiting for {', '.join(waiting)})",
            highlight=False,
        )
