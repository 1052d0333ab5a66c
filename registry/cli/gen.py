"""`gen`: ISCC codes of files and directories, one process per core, with progress."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from registry.cli.common import JsonOpt, app, err, out, print_json
from registry.errors import InputError


@app.command()
def gen(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILES", help="Files or directories (searched recursively)", readable=False
        ),
    ],
    json_out: JsonOpt = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Files coded at once (default: cores)")
    ] = None,
) -> None:
    """Generate the ISCC-CODE, units, datahash and metahash of files.

    A failing file is reported on one line and the others go on; the exit code is 1 if any
    failed.
    """
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    from registry.iscc.batch import expand_paths, generate_many

    paths = expand_paths(files)
    if not paths:
        raise InputError("no files found in the given directories")
    results: list[dict[str, Any]] = []
    failures = 0
    columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bars:
        overall = bars.add_task("files", total=len(paths), visible=len(paths) > 1)
        decoding: dict[Path, TaskID] = {}

        def on_progress(path: Path, done: float, total: float | None) -> None:
            if path not in decoding:
                decoding[path] = bars.add_task(path.name, total=total)
            bars.update(decoding[path], completed=done)

        for item in generate_many(paths, jobs, on_progress):
            if item.path in decoding:
                bars.remove_task(decoding.pop(item.path))
            bars.advance(overall)
            shown = _shown(item.path, files)
            if item.result is not None:
                results.append({"file": shown} | item.result.to_dict())
            else:
                failures += 1
                bars.console.print(f"[red]error:[/red] {item.error}", highlight=False)
                results.append({"file": shown, "error": item.error})
    if json_out:
        print_json(results if len(paths) > 1 else results[0])
    else:
        for result in results:
            if "error" not in result:
                _print_iscc(result)
    if failures:
        raise typer.Exit(1)


def _shown(path: Path, inputs: list[Path]) -> str:
    """A file as the user named it, or, found in a given directory, relative to that."""
    for given in inputs:
        if given.is_dir() and path.is_relative_to(given):
            return str(path.relative_to(given))
    return str(path)


def _print_iscc(result: dict[str, Any]) -> None:
    from rich.table import Table

    from registry.iscc.codec import unit_name

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # hashes and codes stay whole on narrow terminals
    table.add_row("[bold]file[/bold]", f"[bold]{result['file']}[/bold]")
    table.add_row("[bold]ISCC-CODE[/bold]", f"[bold green]{result['iscc']}[/bold green]")
    for unit in result.get("units", []):
        table.add_row(f"  {unit_name(unit)}", unit)
    fields = ("name", "mediatype", "mode", "filesize", "datahash", "metahash")
    facts = ("characters", "width", "height", "duration", "fps", "frames", "channels")
    for field in (*fields, *facts, "sample_rate", "soundtrack"):
        if result.get(field) not in (None, ""):
            table.add_row(field, str(result[field]))
    out.print(table)
    out.print()
