"""`resolve`, `search`, `match` and `conflicts`: answers from the local store, printed for
people or as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from registry.cli.common import JsonOpt, app, get_settings, open_store, out, print_json

if TYPE_CHECKING:
    from rich.console import Console

HISTORIES_SHOWN = 50
# Conflict evidence in words.
_EVIDENCE = {
    "datahash": "the very same bytes",
    "content": "near-identical content",
    "segment": "an excerpt of the other work",
}


@app.command()
def resolve(
    query: Annotated[
        str,
        typer.Argument(metavar="QUERY", help="ISCC-ID, ISCC-CODE, datahash or declarer address"),
    ],
    json_out: JsonOpt = False,
) -> None:
    """Find the declarations behind an ISCC-ID, ISCC-CODE, datahash or declarer (from the index)."""
    from registry.search.resolve import classify
    from registry.search.resolve import resolve as resolve_query

    classify(query)  # a query that is nothing resolvable is refused before the store is opened
    store = open_store(get_settings(), create=False)
    resolution = resolve_query(store, query)
    data = resolution.to_dict()
    # What happened to each declaration since (updates, transfers, revocation); a declarer's
    # long list shows the first HISTORIES_SHOWN in full.
    for record in data["records"][:HISTORIES_SHOWN]:
        record["history"] = store.history(record["iscc_id"])
    if json_out:
        print_json(data)
    else:
        print_declarations(out, data["records"], title=f"{resolution.kind} {resolution.query}")
    if not resolution.records:
        raise typer.Exit(1)


ThresholdOpt = Annotated[
    int,
    typer.Option(min=0, max=64, help="Most differing bits (of 64) per unit to count as similar"),
]


LimitOpt = Annotated[int, typer.Option(min=1, max=1000, help="Most matches to show")]


RevokedOpt = Annotated[
    bool, typer.Option("--include-revoked", help="Show revoked declarations too")
]


@app.command()
def search(
    iscc: Annotated[str, typer.Argument(metavar="ISCC", help="An ISCC-CODE or a single ISCC-UNIT")],
    threshold: ThresholdOpt = 10,
    limit: LimitOpt = 20,
    include_revoked: RevokedOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Find declarations similar to an ISCC-CODE or unit (in the local index)."""
    from registry.search.similarity import SimilarityIndex, query_units, similar

    units = query_units(iscc)
    store = open_store(get_settings(), create=False)
    found = similar(store, SimilarityIndex(store), iscc, units, threshold, limit, include_revoked)
    if json_out:
        print_json(found)
        return
    print_matches(out, found)


@app.command()
def match(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The file to look for", readable=False)
    ],
    threshold: ThresholdOpt = 10,
    limit: LimitOpt = 20,
    include_revoked: RevokedOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Who declared FILE, or something like it: its ISCC, exact and similar declarations."""
    from registry.search.similarity import SimilarityIndex, match_file

    store = open_store(get_settings(), create=False)
    found = match_file(store, SimilarityIndex(store), file, threshold, limit, include_revoked)
    if json_out:
        print_json(found)
        return
    code = found["iscc"]["iscc"]
    if code is None:  # sound too short for an Audio-Code: the answer says why
        out.print(f"no ISCC for {file}: {found['iscc']['note']}", highlight=False, soft_wrap=True)
    else:
        out.print(f"[bold]{code}[/bold]  {file}", highlight=False, soft_wrap=True)
    print_declarations(out, found["exact"], title="these exact bytes")
    print_matches(out, found["similar"])
    print_snippets(out, found["snippets"])


def _place(offset: int, length: int, unit: str) -> str:
    if unit == "ms":
        return f"{offset / 1000:.1f} s to {(offset + length) / 1000:.1f} s"
    return f"characters {offset} to {offset + length}"


def print_snippets(console: Console, snippets: list[dict[str, Any]]) -> None:
    if not snippets:
        console.print("not found as an excerpt of a declared work")
        return
    console.print(f"\nan excerpt of {len(snippets)} declared work(s), best first\n")
    for m in snippets:
        d = m["declaration"]
        console.print(
            f"[bold green]{d['iscc_id']}[/bold green]  score {m['score']:.3f}  by {d['declarer']}",
            highlight=False,
            soft_wrap=True,
        )
        for k in m["kinds"]:
            if k.get("interval"):
                first, last = k["interval"]
                start = _place(first, 0, k["unit"]).split(" to ")[0]
                end = _place(last, k["length"], k["unit"]).split(" to ")[1]
                count = k.get("place_count") or len(k["places"])
                every = f", every {k['period'] / 1000:.2f} s" if k.get("period") else ""
                where = f"somewhere from {start} to {end} ({count} places fit equally{every})"
            else:
                where = f"at {_place(k['offset'], k['length'], k['unit'])}"
            located = f", placed by {k['located_by']}" if k.get("located_by") else ""
            console.print(
                f"  {k['kind']}: {where} of the work{located}, "
                f"{k['matched']} segments, score {k['score']:.3f}",
                highlight=False,
            )


def print_matches(console: Console, found: dict[str, Any]) -> None:
    from registry.iscc.codec import unit_type_name

    matches = found["matches"]
    if not matches:
        console.print(
            f"no similar declaration within {found['threshold']} bits on "
            f"{', '.join(map(unit_type_name, found['unit_types'])) or 'any unit'}"
        )
        return
    console.print(f"{len(matches)} similar declaration(s), best first\n")
    for m in matches:
        d = m["declaration"]
        units = "  ".join(f"{unit_type_name(u['unit_type'])} {u['distance']}" for u in m["units"])
        revoked = "  [red]revoked[/red]" if d.get("revoked") else ""
        console.print(
            f"[bold green]{d['iscc_id']}[/bold green]  score {m['score']:.3f}  "
            f"by {d['declarer']}{revoked}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"  {d['iscc_code']}  distances: {units}", highlight=False, soft_wrap=True)


def print_declarations(console: Console, records: list[dict[str, Any]], title: str = "") -> None:
    """One block per declaration: identifiers stay on one line, whatever the terminal width."""
    from rich.table import Table

    if not records:
        console.print(f"no declaration found for {title}")
        return
    console.print(f"{len(records)} declaration(s) for {title}\n", highlight=False)
    for r in records:
        status = "" if r["valid"] else f"  [red]invalid: {r['invalid_reason']}[/red]"
        if r.get("revoked"):
            status += "  [red]revoked[/red]"
        console.print(
            f"[bold green]{r['iscc_id']}[/bold green]{status}", highlight=False, soft_wrap=True
        )
        table = Table(show_header=False, box=None, padding=(0, 1, 0, 2))
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for label, key in (
            ("declarer", "declarer"),
            ("owner", "owner"),
            ("ISCC-CODE", "iscc_code"),
            ("datahash", "datahash"),
            ("metahash", "metahash"),
            ("gateway", "gateway"),
            ("block", "block_number"),
            ("tx", "tx_hash"),
        ):
            if r.get(key) not in (None, "") and not (key == "owner" and r.get("revoked")):
                table.add_row(label, str(r[key]))
        for i, event in enumerate(r.get("history", [])[1:]):
            table.add_row("history" if i == 0 else "", _history_line(event))
        console.print(table)
        console.print()


def _history_line(event: dict[str, Any]) -> str:
    """One event after the declaration, as a line: what changed, by whom, where."""
    data, where = event["data"], f"block {event['block_number']}"
    if event["event"] == "Transferred":
        return f"{where}: transferred from {data['from']} to {data['to']}"
    if event["event"] == "Revoked":
        return f"{where}: revoked by {data['owner']}"
    if event["event"] == "Updated":
        gateway = data.get("gateway") or "no gateway"
        return f"{where}: updated by {data['owner']} (metahash {data['metahash']}, {gateway})"
    return f"{where}: {event['event']}"


@app.command()
def conflicts(
    query: Annotated[
        str | None,
        typer.Argument(
            metavar="QUERY", help="An ISCC-ID or a declarer address; all conflicts if omitted"
        ),
    ] = None,
    status: Annotated[
        str, typer.Option(metavar="STATUS", help="open (neither side revoked), resolved, or all")
    ] = "all",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most conflicts to show")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Conflicts to skip (paging)")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Declarations by different declarers of the same or similar content (from the index);
    the earlier declaration holds priority."""
    from registry.ledger.conflicts import check_status, list_conflicts
    from registry.search.resolve import classify

    check_status(status)
    filters: dict[str, str] = {}
    if query is not None:
        kind, normalized = classify(query, accepted=("iscc-id", "declarer"))
        filters["iscc_id" if kind == "iscc-id" else "declarer"] = normalized
    found = list_conflicts(
        open_store(get_settings(), create=False),
        status=check_status(status),
        limit=limit,
        offset=offset,
        **filters,
    )
    if json_out:
        print_json(found)
        return
    if not found:
        out.print("no conflicts recorded" + (f" for {query}" if query else ""))
        return
    from registry.iscc.codec import unit_type_name

    for c in found:
        earlier, later = c["earlier"], c["later"]
        state = "[green]resolved[/green]" if c["resolved"] else "[red]open[/red]"
        out.print(
            f"[bold]{later['iscc_id']}[/bold] by {later['declarer']} conflicts with earlier "
            f"[bold]{earlier['iscc_id']}[/bold] by {earlier['declarer']}  {state}",
            highlight=False,
            soft_wrap=True,
        )
        for e in c["evidence"]:
            unit = (
                f": {unit_type_name(e['unit_type'])}, {e['distance']} of {e['bits']} bits differ"
                if ("unit_type" in e)
                else ""
            )
            what = _EVIDENCE.get(e["kind"], e["kind"])
            out.print(f"  {what}{unit}  (strength {e['strength']:.3f})", highlight=False)
        for d in c["disagreements"]:
            out.print(
                f"  {d['field']} differs: {d['earlier']!r} (earlier) vs {d['later']!r} (later)",
                highlight=False,
                soft_wrap=True,
            )
