"""The ``recorder`` command line: thin click commands over the library.

Each command parses its arguments, makes one library call and formats the
answer. A :class:`~recorder.RecorderError` becomes one line on stderr and
the error's ``exit_code`` (see :mod:`recorder.errors`; ``--debug`` shows the
traceback instead). Heavy modules are
imported inside the commands, so ``recorder --help`` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from ..errors import RecorderError
from ..version import __version__


class _Group(click.Group):
    """Turns library errors into one line on stderr, unless ``--debug``; refuses arguments that are not text."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        from ..codec.hashing import is_utf8

        for arg in args:
            # Bytes the shell could not decode arrive as lone surrogates, which no store or SQL can hold.
            if isinstance(arg, str) and not is_utf8(arg):
                raise click.ClickException(
                    f"the argument {arg!a} is not UTF-8 text (the terminal passed bytes it could not "
                    "decode); retype it, or set a UTF-8 locale"
                )
        return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RecorderError as e:
            if ctx.params.get("debug"):
                raise
            click.echo(f"recorder: error: {_clean(e)}", err=True)  # one line, whatever the store held
            sys.exit(e.exit_code)


@click.group(name="recorder", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="recorder")
@click.option(
    "--store",
    "store",
    envvar="RECORDER_STORE",
    type=click.Path(file_okay=False),
    help="The store folder (default: $RECORDER_STORE, else the nearest .recorder/).",
)
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def main(ctx: click.Context, store: str | None, debug: bool) -> None:
    """Record numerical experiments and parameter studies in a SQLite provenance database.

    A store is a folder with recorder.sqlite and objects/; record into it from
    Python with recorder.Recorder or @recorder.experiment. A run is named by
    its short id (the last 8 or more digits, as `recorder log` shows it), any
    unique prefix of its id, or the full id. --store may also follow the
    command (recorder log --store runs).
    """
    ctx.obj = {"store": store}


def _open(ctx: click.Context) -> Any:
    """Open the store for reading; recorder's warnings (e.g. crashed sessions left for later) as one line each."""
    import warnings

    from ..errors import RecorderWarning
    from ..read.database import open as open_store

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        db = open_store(ctx.obj["store"])
    for warning in caught:
        if issubclass(warning.category, RecorderWarning):
            click.echo(f"recorder: warning: {warning.message}", err=True)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    return db


def _interactive() -> bool:
    return sys.stdout.isatty()


def _store_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--store`` after the command name too (``recorder log --store runs``); it wins over the group's."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.ensure_object(dict)["store"] = value

    return click.option(
        "--store",
        type=click.Path(file_okay=False),
        expose_value=False,
        callback=remember,
        help="The store folder (as `recorder --store`).",
    )(command)


def _clean(text: Any, keep: str = "") -> str:
    """A text from a store, safe to print: every character that is not visible text escaped (``\\x1b``, ``\\u202e``).

    Escape sequences, bidi overrides, line separators, lone surrogates and
    invisible characters (Hangul fillers, variation selectors, unassigned and
    private-use code points) in names and values would otherwise reach the
    terminal raw (a name could recolour, hide or reorder what is shown, end
    the line early, or look like another).
    """
    shown = str(text)
    if shown.isascii() and shown.isprintable():
        return shown
    from ..codec.hashing import not_text

    if not_text(shown) is None:
        return shown
    from ..codec.hashing import is_not_text

    return "".join(ascii(c)[1:-1] if c not in keep and is_not_text(c) else c for c in shown)


def _block(text: str) -> list[str]:
    """A traceback or captured output from a store as lines, each cleaned (tabs kept), indented."""
    return ["  " + _clean(line, keep="\t") for line in text.rstrip().split("\n")]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return _clean(value)


def _pairs(values: dict[str, Any], limit: int = 60) -> str:
    text = " ".join(f"{_clean(k)}={_short(v)}" for k, v in values.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(
    headers: list[str],
    rows: list[list[str]],
    right: list[list[bool]] | None = None,
    *,
    styles: list[str | None] | None = None,
    wide: bool = False,
) -> str:
    """A table for people: rich on a terminal, aligned plain text otherwise; ``right`` right-aligns cells.

    ``styles`` gives each row a rich style (on a terminal); ``wide`` lets the table be as wide as its
    cells instead of the terminal (for a pager that scrolls sideways).
    """
    right = right or [[False] * len(row) for row in rows]
    if _interactive():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(*headers, box=None, header_style="bold")
        for i, (row, flags) in enumerate(zip(rows, right)):
            # Text, not str: rich would read "[red]" in a value as markup.
            cells = (Text(c, justify="right" if r else "left") for c, r in zip(row, flags))
            table.add_row(*cells, style=styles[i] if styles else None)
        console = Console()
        if wide:
            console = Console(width=max(console.width, Console(width=10**5).measure(table).maximum))
        with console.capture() as captured:
            console.print(table)
        return captured.get().rstrip("\n")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += [
        "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, flags)).rstrip()
        for row, flags in zip(rows, right)
    ]
    return "\n".join(lines)


def _json(value: Any, indent: int | None = 2) -> str:
    """JSON for programs: exact values, and every character that is not visible text as a ``\\u`` escape."""
    import json

    text = json.dumps(value, indent=indent, ensure_ascii=False, default=str)
    from ..codec.hashing import not_text

    if not_text(text) is None:
        return text
    from ..codec.hashing import is_not_text

    # Inside strings only (JSON's own syntax is ASCII): the \\u escape reads back as the same character
    # (outside the BMP as a surrogate pair, which JSON readers join).
    return "".join(json.dumps(c)[1:-1] if c != "\n" and is_not_text(c) else c for c in text)


@main.command()
@click.argument("experiment", required=False)
@click.option("-n", "limit", type=click.IntRange(min=1), help="Show at most N runs.")
@click.option(
    "--status", type=click.Choice(["done", "failed", "interrupted", "running"]), help="Only runs with this status."
)
@click.option("--since", help="Only runs started on or after this date (2026-11-23, 2026-11-23T08:00).")
@click.option("--oneline", is_flag=True, help="One short line per run.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one run each, for programs.")
@click.option("--tag", help="Only runs with this tag (recorder tag).")
@click.option("--deleted", is_flag=True, help="The deleted runs (recorder rm) instead of the live ones.")
@click.option("--curation", is_flag=True, help="The curation events (tag, note, rm, restore, purge) instead of runs.")
@_store_option
@click.pass_context
def log(
    ctx: click.Context,
    experiment: str | None,
    limit: int | None,
    status: str | None,
    since: str | None,
    oneline: bool,
    as_json: bool,
    tag: str | None,
    deleted: bool,
    curation: bool,
) -> None:
    """Show runs, newest first, like git log: short id, experiment, status, start, duration, params, results.

    A failed run shows its exception (type and message, on one line). The short id names the run in
    show, diff and checkout. On a terminal, without -n, the runs are paged
    ($PAGER, else less; LESS=FRX unless set, so a short log is simply printed).
    Deleted runs (recorder rm) are left out; --deleted lists them instead, and
    --curation lists who tagged, noted, deleted, restored or purged what, and when.
    """
    from ..read import show as history

    if curation:
        _log_curation(ctx, limit, as_json)
        return
    with _open(ctx) as db:
        entries = history.log(db, experiment, limit=limit, status=status, since=since, tag=tag, deleted=deleted)
        if as_json:
            for entry in entries:
                click.echo(_json(entry, indent=None))
            return
        if oneline:
            lines = (
                f"{e['short_id']} {_clean(e['status']):<11} {_clean(e['experiment'])} {_pairs(e['params'], 40)}"
                f" {_pairs(e['results'], 40) if e['results'] or not e['error'] else _clean(e['error'])[:60]}"
                + (f" (rerun of {_clean(e['rerun_of'])[-8:]})" if e["rerun_of"] else "")
                for e in entries
            )
        else:
            lines = (_log_entry(e) for e in entries)
        if limit is None and _interactive():
            import os

            # As git does: quit at once when it fits the screen (F), keep colours (R), leave it on screen (X).
            os.environ.setdefault("LESS", "FRX")
            click.echo_via_pager(line + "\n" for line in lines)
        else:
            for line in lines:
                click.echo(line)


def _log_curation(ctx: click.Context, limit: int | None, as_json: bool) -> None:
    """``recorder log --curation``: the curation events, newest first."""
    from ..shards.curate import events

    found = events(ctx.obj["store"])[::-1][:limit]
    for e in found:
        if as_json:
            click.echo(_json(e, indent=None))
            continue
        detail = dict(e["detail"]) if isinstance(e["detail"], dict) else {"detail": e["detail"]}
        runs = detail.pop("runs", None)
        what = f"{len(runs)} runs" if isinstance(runs, list) else f"{runs} runs" if runs is not None else ""
        rest = " ".join(f"{k}={_short(v)}" for k, v in sorted(detail.items()) if v is not None)
        click.echo(
            _clean(f"{e['time'][:19].replace('T', ' ')}  {e['action']:<7} {what}  {rest}  by {e['user']}@{e['host']}")
        )


def _precision(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    """``--precision``: a number of significant digits (1 to 17), or ``full`` (None) for every digit."""
    if value.strip().lower() == "full":
        return None
    try:
        digits = int(value)
    except ValueError:
        digits = 0
    if not 1 <= digits <= 17:
        raise click.BadParameter(f"{value!r} is not a number of digits (1 to 17) or 'full'", ctx, param)
    return digits


@main.command()
@click.argument("experiment")
@click.option(
    "-n",
    "limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Show at most N runs (0: all of them).",
)
@click.option("--where", help='An SQL condition over the experiment\'s view, e.g. "b = 8 AND energy > 1".')
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["done", "failed", "interrupted", "running"]),
    help="Only runs with this status (repeat for several; default: every run).",
)
@click.option("--sort", help="Sort by this result, parameter or run column (ascending; runs without it last).")
@click.option("--desc", "descending", is_flag=True, help="With --sort: largest first.")
@click.option(
    "--precision",
    metavar="N|full",
    default="6",
    callback=_precision,
    show_default=True,
    help="Significant digits of floats in the table, or 'full' for every digit (--csv and --json are exact).",
)
@click.option("--csv", "as_csv", is_flag=True, help="Comma-separated values, exact, for programs.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one run each (params, results), for programs.")
@click.option("--tag", help="Only runs with this tag (recorder tag).")
@_store_option
@click.pass_context
def runs(
    ctx: click.Context,
    experiment: str,
    limit: int,
    where: str | None,
    statuses: tuple[str, ...],
    sort: str | None,
    descending: bool,
    precision: int | None,
    as_csv: bool,
    as_json: bool,
    tag: str | None,
) -> None:
    """Show an EXPERIMENT's runs as a table: one row per run, a column per parameter and result.

    \b
    recorder runs lorenz
    recorder runs lorenz --where "b = 8" --sort energy --desc -n 10

    Newest first (--sort: by a result or parameter instead). Columns: the
    run's short id, status, start, duration (s), every parameter and every
    scalar result, numbers right-aligned; a failed run is shown in red with
    the last line of its error. On a terminal the table is paged like
    `recorder log`. --json writes one line per run ({"run_id", "short_id",
    "status", "time_start", "duration_s", "params", "results", "error",
    "tags", "note"});
    --csv a header and one row per run.
    """
    from ..read.runs import number_text
    from ..read.runs import runs as select_runs

    if descending and sort is None:
        raise click.UsageError("--desc orders by --sort: add --sort NAME")
    if as_csv and as_json:
        raise click.UsageError("give --csv or --json, not both")
    with _open(ctx) as db:
        table = select_runs(
            db,
            experiment,
            where=where,
            status=list(statuses) or None,
            sort=sort,
            descending=descending,
            limit=limit or None,
            tag=tag,
        )
    if len(table.runs) < table.total:
        click.echo(f"recorder: showing {len(table.runs)} of {table.total} runs; -n N shows more (-n 0: all)", err=True)
    if as_json:
        for e in table.runs:
            keys: tuple[str, ...] = ("run_id", "short_id", "status", "time_start", "duration_s", "params")
            keys += ("results", "error", "tags", "note")
            click.echo(_json({k: e[k] for k in keys}, indent=None))
        return
    if as_csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(
            ["run_id", "short_id", "status", "time_start", "duration_s"]
            + [_clean(n) for n in (*table.params, *table.results)]
            + ["error"]
        )
        for e in table.runs:
            cells = [e["params"].get(n) for n in table.params] + [e["results"].get(n) for n in table.results]
            writer.writerow(
                [e["run_id"], e["short_id"], e["status"], e["time_start"], _csv_cell(e["duration_s"])]
                + [_csv_cell(c) for c in cells]
                + [_csv_cell(e["error"])]
            )
        return
    failed = any(e["error"] for e in table.runs)
    # Curation columns only when a run shown has some, so that tables of uncurated runs stay as they were.
    curated = [k for k in ("tags", "note") if any(e[k] for e in table.runs)]
    headers = ["run", "status", "start", "duration", *map(_clean, table.params), *map(_clean, table.results)]
    rows, right = [], []
    for e in table.runs:
        cells = [e["params"].get(n, "") for n in table.params] + [e["results"].get(n, "") for n in table.results]
        rows.append(
            [e["short_id"], _clean(e["status"]), (e["time_start"] or "")[:19].replace("T", " ")]
            + [number_text(e["duration_s"], 3) if e["duration_s"] is not None else ""]
            + [_clean(number_text(c, precision)) for c in cells]
            + ([_clean(e["error"] or "")] if failed else [])
            + [_clean(",".join(e[k]) if k == "tags" else (e[k] or "")[:60]) for k in curated]
        )
        right.append(
            [False, False, False, True]
            + [isinstance(c, (int, float)) for c in cells]
            + [False] * failed
            + [False] * len(curated)
        )
    text = _table(
        headers + (["error"] if failed else []) + curated,
        rows,
        right,
        styles=["red" if e["status"] == "failed" else None for e in table.runs],
        wide=True,
    )
    if _interactive():
        import os

        # As log: quit at once when it fits (F), keep colours (R), leave it on screen (X); and S: a wide
        # table scrolls sideways instead of wrapping.
        os.environ.setdefault("LESS", "FRSX")
        click.echo_via_pager(text + "\n")
    else:
        click.echo(text)


def _log_entry(e: dict[str, Any]) -> str:
    """One run of ``recorder log``, several lines."""
    out = [
        f"run {e['short_id']}  {_clean(e['status'])}"
        + (f"  (rerun of {_clean(e['rerun_of'])})" if e["rerun_of"] else ""),
        f"  experiment {_clean(e['experiment'])}   started {e['time_start']}"
        f"   took {_short(e['duration_s'])} s   code {_clean(str(e['env_sha'])[:12])}",
        f"  params   {_pairs(e['params'], 200)}",
    ]
    if e["results"] or not e["error"]:
        out.append(f"  results  {_pairs(e['results'], 200)}")
    if e["error"]:
        out.append(f"  error    {_clean(e['error'])}")
    if e.get("tags"):
        out.append(f"  tags     {_clean(', '.join(e['tags']))}")
    if e.get("note"):
        out.append(f"  note     {_clean(e['note'])[:200]}")
    return "\n".join(out) + "\n"


@main.command()
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Everything as JSON, for programs.")
@_store_option
@click.pass_context
def show(ctx: click.Context, run: str, as_json: bool) -> None:
    """Show everything about one RUN: params, results, status, error, output, session (config, message, code).

    RUN is a short id (as `recorder log` shows it), a unique prefix, or a full id.
    """
    from ..read import show as history

    with _open(ctx) as db:
        info = history.show(db, run)
    if as_json:
        click.echo(_json(info))
        return
    session = info["session"]
    out = [
        f"run {info['short_id']}  {_clean(info['status'])}",
        f"id           {info['run_id']}",
        f"experiment   {_clean(info['experiment'])}",
        f"started      {info['time_start'] or 'unknown'}   took {_short(info['duration_s'])} s   seed {_clean(info['seed'])}",
        f"pset         {_clean(info['pset_hash'])}",
    ]
    if info["rerun_of"]:
        out.append(f"rerun of     {_clean(info['rerun_of'])}")
    if info["exec_pid"] is not None or info["pset_seq"] is not None:  # unknown for runs before schema 7
        out.append(
            f"ran on       {_clean(info['exec_host'])}"
            + (f"   pid {_clean(info['exec_pid'])}" if info["exec_pid"] is not None else "")
            + (f"   pset {_clean(info['pset_seq'])} of its sweep" if info["pset_seq"] is not None else "")
        )
    if info["function"]:
        function = info["function"]
        out.append(
            f"function     {_clean(function['module'])}:{_clean(function['qualname'])}"
            f"   ({_clean(function['how'])} {_clean(function['path'] or '(no file)')})"
        )
    if info["error_line"]:
        out.append(f"error        {_clean(info['error_line'])}")
    if info["origin"]:
        out.append(f"imported     from {_clean(info['origin'])}")
    out += ["params", *(f"  {_clean(k)} = {_clean(repr(v))}" for k, v in info["params"].items()), "results"]
    out += [
        f"  {_clean(name)} = {_value_text(entry)}" + (f"   # {_clean(entry['comment'])}" if "comment" in entry else "")
        for name, entry in info["results"].items()
    ]
    if info["comment"]:
        out.append(f"comment      {_clean(info['comment'])}")
    if info["deleted"]:
        gone = info["deleted"]
        out.append(f"deleted      {_clean(gone['time'])} by {_clean(gone['user'])}@{_clean(gone['host'])}")
    if info["tags"]:
        out.append(f"tags         {_clean(', '.join(info['tags']))}")
    for n in info["notes"]:
        out.append(
            f"note         {_clean(n['time'][:19])} {_clean(n['user'])}@{_clean(n['host'])}: {_clean(n['text'])}"
        )
    out += [
        f"session      {_clean(session['id'])}  ({_clean(session['status'])})"
        f"   started {_clean(session['time_start'])}"
        + (f"   ended {_clean(session['time_end'])}" if session["time_end"] else ""),
    ]
    if session["message"]:
        out.append(f"  message    {_clean(session['message'])}")
    if session["comment"]:
        out.append(f"  comment    {_clean(session['comment'])}")
    out += [
        f"  code       {_clean(session['git_commit'] or '(no git)')}"
        + (f" on {_clean(session['git_branch'])}" if session["git_branch"] else "")
        + (" (dirty)" if session["git_dirty"] else "")
        + (" (auto-committed)" if session["git_auto_committed"] else ""),
        f"  host       {_clean(session['host'])}   user {_clean(session['user'])}",
        f"  python     {_clean(session['python'])}   on {_clean(session['platform'])}",
        f"  packages   {len(session['packages'])} (fingerprint {_clean(session['fingerprint'])})",
    ]
    if session["config"]:
        out += ["  config", *(f"    {_clean(k)} = {_value_text(v)}" for k, v in session["config"].items())]
    if info["error"]:
        out += ["traceback", *_block(info["error"])]
    if info["output"]:
        out += ["output", *_block(info["output"])]
    click.echo("\n".join(out))


@main.command()
@click.argument("run")
@click.option("--into", type=click.Path(file_okay=False), help="Copy the files into this folder (made if missing).")
@_store_option
@click.pass_context
def files(ctx: click.Context, run: str, into: str | None) -> None:
    """List the files RUN left in its work folder, or copy them out with --into DIR.

    Nothing is written outside DIR, through a link, or over a file there.
    """
    from ..read.files import copy_out

    with _open(ctx) as db:
        if into is None:
            for name, digest in db.files(run):
                click.echo(f"{_clean(name)}  {_clean(digest)}")
            return
        written = copy_out(db, run, into)
    click.echo(f"copied {len(written)} file{'s' if len(written) != 1 else ''} into {_clean(into)}")


def _value_text(entry: dict[str, Any]) -> str:
    """A result or config value as show prints it: the value, or an array's dtype, shape, size and place."""
    if "array" in entry:
        a = entry["array"]
        where = "inline" if a.get("inline") else f"object {_clean(a['digest'])[:16]}"
        shape = tuple(a["shape"]) if isinstance(a["shape"], list) else ()
        return _clean(f"array {a['dtype']} shape {shape} ({a['bytes']} bytes, {where})")
    if "file" in entry:
        f = entry["file"]
        return _clean(f"file ({f['bytes']} bytes, object {str(f['digest'])[:16]})")
    if "link" in entry:
        return _clean(f"link to {entry['link']!r} (not followed)")
    if "bytes" in entry:
        return f"{entry['bytes']} bytes"
    return _clean(repr(entry["value"]))


@main.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--code", is_flag=True, help="Also show the git diff between the two runs' commits.")
@click.option("--json", "as_json", is_flag=True, help="The differences as JSON.")
@_store_option
@click.pass_context
def diff(ctx: click.Context, run_a: str, run_b: str, code: bool, as_json: bool) -> None:
    """Show how two runs differ: status, parameters, results, config, environment, packages (code with --code)."""
    from ..read import show as history

    with _open(ctx) as db:
        changes = history.diff(db, run_a, run_b)
    patch = None
    if code:
        from ..provenance.gitinfo import code_diff

        commits, repos = changes["commits"], changes["repos"]
        if None in commits or repos[0] is None:
            raise RecorderError("--code needs both runs recorded with git (a commit or a snapshot)")
        patch = code_diff(repos[0], commits[0], commits[1])
    if as_json:
        click.echo(_json({**changes, "code": patch} if code else changes))
        return
    a, b = changes["short_ids"]
    out = [f"--- run {a}", f"+++ run {b}"]
    if changes["status"]:
        left, right = changes["status"]
        out.append(f"status: {_clean(left)} → {_clean(right)}")
    for section, label in (("params", "param"), ("results", "result"), ("config", "config"), ("environment", "env")):
        for name, (left, right) in changes[section].items():
            out.append(f"{label} {_clean(name)}: {_clean(repr(left))} → {_clean(repr(right))}")
    packages = changes["packages"]
    out += [f"package +{_clean(k)} {_clean(v)}" for k, v in packages["added"].items()]
    out += [f"package -{_clean(k)} {_clean(v)}" for k, v in packages["removed"].items()]
    out += [f"package {_clean(k)}: {_clean(old)} → {_clean(new)}" for k, (old, new) in packages["changed"].items()]
    if len(out) == 2:
        out.append("(no differences in status, parameters, results, config or environment)")
    if patch is not None:
        out += (
            [_clean(line, keep="\t") for line in patch.rstrip().split("\n")]
            if patch.strip()
            else ["(no code differences)"]
        )
    click.echo("\n".join(out))


@main.command()
@click.argument("runs", nargs=-1)
@click.option("--experiment", "-e", help="Compare the runs of this experiment (in the order they started).")
@click.option("--where", help='With --experiment: an SQL condition over its view, e.g. "b = 8 AND energy > 1".')
@click.option(
    "--status",
    type=click.Choice(["done", "failed", "interrupted", "running"]),
    help="With --experiment: only runs with this status (default: every run).",
)
@click.option(
    "-n",
    "--limit",
    "limit",
    type=click.IntRange(min=1),
    help="With --experiment: compare the first N runs selected (more than 10000 are refused without it).",
)
@click.option("--all", "all_columns", is_flag=True, help="Show every column, the constant ones too.")
@click.option("--json", "as_json", is_flag=True, help="The comparison as one JSON document, for programs.")
@_store_option
@click.pass_context
def compare(
    ctx: click.Context,
    runs: tuple[str, ...],
    experiment: str | None,
    where: str | None,
    status: str | None,
    limit: int | None,
    all_columns: bool,
    as_json: bool,
) -> None:
    """Compare RUNS (two or more), or an experiment's runs: one row per run, the columns that differ.

    \b
    recorder compare 0a1b2c3d 4e5f6a7b 8c9d0e1f
    recorder compare --experiment lorenz --where "b = 8"

    Columns: experiment, status, error (a run's exception, on one line),
    param.NAME, config.NAME (the config of the run's session), result.NAME
    (arrays and bytes by dtype, shape and digest, not by value), the code
    (code.commit, code.dirty, code.diff: the digest of recorded uncommitted
    changes, code.snapshot, code.env_sha), the environment (env.python,
    env.platform, env.host, env.recorder) and package.NAME for each package
    whose version differs ("-": not installed in that run). A column with
    the same value in every run is constant: it is listed on the
    "constant:" line above the table instead (--all: in the table too).

    Values are compared exactly: floats bit for bit (0.1 + 0.2 differs from
    0.3, -0.0 from 0.0), NaN equals NaN, and 1, 1.0 and True differ. The
    table cuts a value at 60 characters; --json has it whole.

    --json prints one document: {"constant": {column: value},
    "same_packages": N, "columns": [the columns shown], "runs": [{"run_id",
    "short_id", column: value, ...}]} (a run without a column has no key for it).
    """
    from ..read.compare import CELL_LIMIT, text
    from ..read.compare import compare as compare_runs

    if runs and (experiment is not None):
        raise click.UsageError("give RUNS or --experiment, not both")
    if not runs and experiment is None:
        raise click.UsageError("give two or more RUNS, or --experiment EXPERIMENT")
    if runs and len(runs) < 2:
        raise click.UsageError("give two or more RUNS to compare (recorder show RUN shows one)")
    if experiment is None and (where is not None or status is not None or limit is not None):
        raise click.UsageError("--where, --status and --limit select runs of an experiment: add --experiment")
    with _open(ctx) as db:
        table = compare_runs(
            db, list(runs) if runs else None, experiment=experiment, where=where, status=status, limit=limit
        )
    if as_json:
        click.echo(_json(table.document(all_columns=all_columns)))
        return

    def cell(name: str, value: Any) -> str:
        shown = _clean(text(name, value))
        return shown if len(shown) <= CELL_LIMIT else shown[: CELL_LIMIT - 1] + "…"

    what = f"{len(table.runs)} run{'s' if len(table.runs) != 1 else ''}"
    if table.constant:
        click.echo(f"{what}; constant: " + ", ".join(f"{_clean(k)}={cell(k, v)}" for k, v in table.constant.items()))
    else:
        click.echo(f"{what}; no constant columns")
    if table.same_packages:
        click.echo(f"packages: {table.same_packages} of the same version in every run")
    shown = table.columns if all_columns else table.differing
    if not table.runs:
        return
    if not shown:
        click.echo("(no column differs between these runs)")
    click.echo(
        _table(
            ["run", *(_clean(name) for name in shown)],
            [[run["short_id"], *(cell(name, run["values"][name]) for name in shown)] for run in table.runs],
            [[False, *(isinstance(run["values"][name], (int, float)) for name in shown)] for run in table.runs],
        )
    )


@main.command()
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="Comma-separated values, for programs.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one row each.")
@_store_option
@click.pass_context
def sql(ctx: click.Context, query: str, as_csv: bool, as_json: bool) -> None:
    """Run a read-only SQL QUERY on the store (its views included) and show the rows.

    The table shows numbers exactly (as Python writes them) and right-aligned,
    NULL as NULL, blobs in hex. --csv writes NULL as an empty field.
    """
    if not query.strip():
        raise RecorderError('no SQL statement given; write one, e.g. recorder sql "SELECT * FROM overview_runs"')
    with _open(ctx) as db:
        headers, rows = db.rows(query)
    if not headers:
        raise RecorderError(
            f"the statement {_clean(query.strip()[:80])!r} returns no columns; "
            "recorder sql runs queries (SELECT …, PRAGMA table_info(…))"
        )
    if as_csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow([_clean(h) for h in headers])
        writer.writerows([[_csv_cell(v) for v in row] for row in rows])
    elif as_json:
        for row in rows:
            click.echo(_json(dict(zip(headers, (v.hex() if isinstance(v, bytes) else v for v in row))), indent=None))
    else:
        click.echo(
            _table(
                [_clean(h) for h in headers],
                [[_cell(v) for v in row] for row in rows],
                [[isinstance(v, (int, float)) for v in row] for row in rows],
            )
        )


def _cell(value: Any) -> str:
    """An SQL value for people: NULL, numbers exactly (repr), blobs in hex, text cleaned."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float):
        return repr(value)
    return _clean(value)


def _csv_cell(value: Any) -> Any:
    """An SQL value for a CSV field: exact numbers, NULL empty, blobs in hex, text cleaned (newlines kept)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _clean(value, keep="\n")
    return value


@main.command()
@click.argument("store_path", metavar="[STORE]", required=False, type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port", default=8001, show_default=True, type=click.IntRange(0, 65535), help="The port (0: a free one)."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the store's page in a web browser.")
@_store_option
@click.pass_context
def serve(ctx: click.Context, store_path: str | None, host: str, port: int, open_browser: bool) -> None:
    """Browse the store in Datasette (read-only) until Ctrl-C: the views, facets, queries, filters.

    STORE (default: --store, $RECORDER_STORE, else the nearest .recorder/)
    is served at http://HOST:PORT/recorder: each experiment's view with
    facets on its explored parameters, the overview views, and queries for
    the failed runs, the latest sessions, each experiment's last sweep and
    a run's arrays. Runs recorded meanwhile show on the next page load.
    Nothing is written to the store. Needs Datasette: pip install 'recorder[ui]'.
    """
    from ..read.serve import serve as serve_store

    def announce(root: Any, url: str) -> None:
        click.echo(f"serving the store {_clean(root)} read-only at {url} (Ctrl-C stops it)")

    serve_store(store_path or ctx.obj["store"], host=host, port=port, open_browser=open_browser, announce=announce)


@main.command()
@click.argument("experiment")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The file: .csv, .jsonl or .parquet (needs pyarrow).",
)
@click.option(
    "--status",
    default="done",
    show_default=True,
    type=click.Choice(["done", "failed", "interrupted", "running", "all"]),
    help="Which runs.",
)
@_store_option
@click.pass_context
def export(ctx: click.Context, experiment: str, output: str, status: str) -> None:
    """Write an EXPERIMENT's runs (params, scalar results, run columns) to a file."""
    with _open(ctx) as db:
        rows = db.export(experiment, output, status=None if status == "all" else status)
    click.echo(f"wrote {rows} runs of {experiment} to {output}")


@main.command()
@click.argument("experiment")
@click.option(
    "-o", "--output", default="report.html", show_default=True, type=click.Path(dir_okay=False), help="The HTML file."
)
@click.option("--color", help="Colour the parallel coordinates by this result (default: the first result).")
@click.option("--array", "array", metavar="NAME", help="Also plot this array result of a few runs.")
@click.option(
    "-n", "array_runs", type=click.IntRange(min=1), default=5, show_default=True, help="With --array: how many runs."
)
@click.option("--where", help='Only the runs matching this SQL condition over the view, e.g. "b = 8".')
@_store_option
@click.pass_context
def report(
    ctx: click.Context,
    experiment: str,
    output: str,
    color: str | None,
    array: str | None,
    array_runs: int,
    where: str | None,
) -> None:
    """Write an HTML report of an EXPERIMENT that opens offline: runs, plots, sessions, failures.

    One file, plotly's JavaScript and the data inline (needs pip install
    'recorder[report]'): runs by status, sessions with their commits and
    hosts, a parallel-coordinates plot of the explored parameters and
    results, each result against each parameter (lines, heat maps), a
    sortable table of the runs and the failures with their errors. Big
    experiments are sampled or binned, and the report says so.
    """
    with _open(ctx) as db:
        done = db.report(experiment, output, color=color, array=array, where=where, array_runs=array_runs)
    click.echo(f"wrote {done.path} ({done.bytes / 1e6:.1f} MB): {done.runs} runs of {_clean(experiment)}")
    for note in done.notes:
        click.echo(f"  {_clean(note)}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="As JSON, for programs.")
@_store_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the store: path, size, experiments and their runs by status, open sessions, objects."""
    from ..read import show as history

    with _open(ctx) as db:
        info = history.status(db)
    if as_json:
        click.echo(_json(info))
        return
    click.echo(
        f"store    {_clean(info['store'])}  (schema {info['schema_version']}, "
        f"database {info['database_bytes'] / 1e6:.1f} MB)"
    )
    click.echo(f"objects  {info['objects']} arrays, {info['object_bytes'] / 1e6:.1f} MB")
    if info["jax_cache_bytes"] is not None:
        click.echo(
            f"jax      compile cache {info['jax_cache_bytes'] / 1e6:.1f} MB (recorder gc --jax-cache empties it)"
        )
    headers = ["experiment", "runs", "done", "failed", "interrupted", "running"]
    click.echo(
        _table(
            headers,
            [[_clean(e[h]) for h in headers] for e in info["experiments"]],
            [[h != "experiment" for h in headers] for _ in info["experiments"]],
        )
    )
    for session in info["open_sessions"]:
        click.echo(
            f"recording: session {_clean(session['session_id'])} on {_clean(session['host'])} "
            f"(pid {_clean(session['pid'])}), {session['running_runs']} runs in flight"
        )


@main.command()
@_store_option
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Re-hash every stored array and check every reference; exit 11 if anything is missing or corrupt."""
    from ..errors import ObjectError
    from ..shards.maintenance import verify as verify_store

    problems = verify_store(ctx.obj["store"])
    for p in problems:
        where = f"{p.run_id} {p.name}: " if p.run_id else ""
        click.echo(_clean(f"{p.what}: {where}{p.digest or ''} {p.detail}".replace("  ", " ")), err=True)
    if problems:
        sys.exit(ObjectError.exit_code)
    click.echo("ok: every array is there and matches its digest")


@main.command()
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.option("--jax-cache", is_flag=True, help="Also empty the store's JAX compile cache (jax-cache/).")
@_store_option
@click.pass_context
def gc(ctx: click.Context, dry_run: bool, jax_cache: bool) -> None:
    """Remove stored arrays that no run or config refers to, and report the bytes freed."""
    from ..shards.maintenance import gc as collect

    report = collect(ctx.obj["store"], dry_run=dry_run, jax_cache=jax_cache)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {report.files} files ({report.bytes / 1e6:.1f} MB) and {report.rows} object rows")
    if jax_cache:
        click.echo(f"{verb} {report.cache_files} files ({report.cache_bytes / 1e6:.1f} MB) of the JAX compile cache")


@main.command()
@click.argument("run")
@click.argument("folder", required=False, type=click.Path(file_okay=False))
@_store_option
@click.pass_context
def checkout(ctx: click.Context, run: str, folder: str | None) -> None:
    """Check out the code a RUN ran (its session's commit or snapshot) as a git worktree in FOLDER.

    A run recorded with git="record" gets its recorded uncommitted changes
    applied. Without FOLDER, the worktree goes beside the repository.
    """
    import shlex

    from ..read import show as history

    with _open(ctx) as db:
        done = history.checkout(db, run, folder)
    applied = " and applied the recorded uncommitted changes (git='record')" if done.diff_applied else ""
    click.echo(
        f"checked out {done.commit} (run {done.run_id}){applied} in {done.folder}\n"
        f"remove it with: git -C {shlex.quote(str(done.repo))} worktree remove {shlex.quote(str(done.folder))}"
        + (" --force" if done.diff_applied else "")
    )


@main.command()
@click.argument("run")
@click.option(
    "--code",
    type=click.Choice(["recorded", "current"]),
    default="recorded",
    show_default=True,
    help="recorded: the commit the run ran, in a temporary worktree; current: the work tree as it is.",
)
@click.option(
    "--set", "changes", multiple=True, metavar="NAME=VALUE", help="Change a parameter (value as JSON, else text)."
)
@click.option("--rtol", type=click.FloatRange(min=0), default=0.0, help="Relative tolerance for floats and arrays.")
@click.option("--atol", type=click.FloatRange(min=0), default=0.0, help="Absolute tolerance for floats and arrays.")
@click.option(
    "--keep", is_flag=True, help="Keep the temporary worktree of the recorded code (and a session's scratch store)."
)
@click.option("--session", "whole", is_flag=True, help="Rerun the whole session RUN names (or the session of run RUN).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Stop a session's script after this long (default: no limit).",
)
@click.option("--json", "as_json", is_flag=True, help="The comparison as one JSON document, for programs.")
@_store_option
@click.pass_context
def rerun(
    ctx: click.Context,
    run: str,
    code: str,
    changes: tuple[str, ...],
    rtol: float,
    atol: float,
    keep: bool,
    whole: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Run RUN's function again on its parameters and seed, record it (linked to RUN) and compare the results.

    Prints "match", or a table of the results that differ. Exits 0 when
    every result matches, 1 when any differs, 13 (or the error's own code
    above 1) when the rerun cannot be made. Differences of the environment
    (Python, platform, packages) are warned about, never a failure.

    When RUN is a session's id (or with --session), the session's main
    script runs again (its arguments, its working folder) into a scratch
    store, whose runs are compared with the session's pset by pset:
    matched, differing, missing, extra. The scratch store is kept, and its
    path printed, when anything differs.
    """
    import json
    import warnings

    from ..errors import RecorderWarning, RerunRefused
    from ..record.rerun import rerun as rerun_run
    from ..record.rerun_session import SessionComparison, rerun_session, resolve_target

    values: dict[str, Any] = {}
    for change in changes:
        name, sep, text = change.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{change!r} is not NAME=VALUE", param_hint="--set")
        try:
            values[name] = json.loads(text)
        except ValueError:
            values[name] = text
    found: Any
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RecorderWarning)
            with _open(ctx) as db:
                kind, full = resolve_target(db, run, session=whole)
            if kind == "session":
                if values:
                    raise RerunRefused("--set changes a run's parameters; a session's script reruns as recorded")
                found = rerun_session(full, code, rtol, atol, ctx.obj.get("store"), keep=keep, timeout=timeout)
            else:
                found = rerun_run(full, code, values, rtol, atol, ctx.obj.get("store"), keep=keep)
    except RecorderError as e:
        if ctx.find_root().params.get("debug"):
            raise
        click.echo(f"recorder: error: {_clean(e)}", err=True)
        sys.exit(e.exit_code if e.exit_code != 1 else RerunRefused.exit_code)  # 1 means "differs" here
    for warning in caught:
        if issubclass(warning.category, RecorderWarning):
            click.echo(f"recorder: warning: {_clean(str(warning.message).removeprefix('recorder: '))}", err=True)
    if as_json:
        click.echo(_json(found.document()))
    elif isinstance(found, SessionComparison):
        _echo_session_rerun(found)
    else:
        out = [f"rerun {found.rerun} of {found.original} ({found.code} code)"]
        out += [f"note: {_clean(note)}" for note in found.notes]
        if found.folder:
            out.append(f"code kept in {found.folder}")
        click.echo("\n".join(out))
        if found.match:
            click.echo("match")
        else:
            rows = [
                [_clean(d.name), _clean(_brief(d.original)), _clean(_brief(d.rerun)), d.what] for d in found.differences
            ]
            click.echo(_table(["result", "original", "rerun", "difference"], rows))
    sys.exit(0 if found.match else 1)


def _echo_session_rerun(found: Any) -> None:
    """Print a session's rerun: the counts, a row per run that did not match, where the scratch store is."""
    counts = found.counts()
    out = [
        f"rerun of session {found.session} ({_clean(found.experiment)}, {found.code} code): "
        + ", ".join(f"{n} {what}" for what, n in counts.items())
    ]
    out += [f"note: {_clean(note)}" for note in found.notes]
    if found.folder:
        out.append(f"code kept in {found.folder}")
    click.echo("\n".join(out))
    rows = [
        [
            _pairs(run.params) if isinstance(run.params, dict) else _short(run.params),
            run.original or "-",
            run.rerun or "-",
            run.outcome,
            _clean(", ".join(d.name for d in run.differences)),
        ]
        for run in found.runs
        if run.outcome != "matched"
    ]
    if rows:
        click.echo(_table(["params", "original", "rerun", "outcome", "differs in"], rows))
    click.echo("match" if found.match else "differs")
    if found.store:
        click.echo(f"scratch store kept: {found.store}")


def _brief(value: Any) -> str:
    """A compared value in a table cell: an array as dtype, shape and the start of its digest."""
    if value is None:
        return "-"
    if isinstance(value, dict) and "digest" in value:
        return f"{value['dtype']}{value['shape']} {str(value['digest'])[:12]}"
    return _short(value)


@main.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option(
    "--into",
    "into",
    required=True,
    type=click.Path(file_okay=False),
    help="The store to merge into (created if needed).",
)
@click.option(
    "--allow-code-mismatch", is_flag=True, help="Merge runs of an experiment even when their code (env SHA) differs."
)
def merge(sources: tuple[str, ...], into: str, allow_code_mismatch: bool) -> None:
    """Merge the stores SOURCES (shards of cluster jobs) into one store.

    Runs the destination has already are skipped, so merging twice changes
    nothing. An experiment whose config values (or code, unless
    --allow-code-mismatch) disagree with the destination's is refused, and
    then nothing is written.
    """
    from ..shards.merge import merge as merge_stores

    report = merge_stores(list(sources), into, allow_code_mismatch=allow_code_mismatch)
    click.echo(
        f"merged {len(sources)} store{'s' if len(sources) != 1 else ''} into {into}: "
        f"{report.runs} runs added, {report.skipped} already there, "
        f"{report.objects} arrays added ({report.object_bytes / 1e6:.1f} MB)"
    )


@main.command()
@click.argument("source", type=click.Path(file_okay=False))
@click.option(
    "--into",
    "into",
    required=True,
    type=click.Path(file_okay=False),
    help="The store to copy the runs into (created if needed).",
)
@click.option("--where", help='SQL condition over the experiment\'s view, e.g. "b = 8 AND energy > 1".')
@click.option("--experiment", "-e", help="Only this experiment's runs.")
def extract(source: str, into: str, where: str | None, experiment: str | None) -> None:
    """Copy the runs of SOURCE that match --where, and what they reference, into another store."""
    from ..shards.merge import extract as extract_runs

    report = extract_runs(source, into, where=where, experiment=experiment)
    click.echo(
        f"extracted {report.runs} runs into {into} ({report.skipped} already there), "
        f"{report.objects} arrays ({report.object_bytes / 1e6:.1f} MB)"
    )


@main.command(name="import")
@click.argument("tool", type=click.Choice(["psweep", "mlflow", "pypet"]))
@click.argument("source", type=click.Path())
@click.option(
    "--into",
    "into",
    type=click.Path(file_okay=False),
    help="The store to import into (default: --store, $RECORDER_STORE, else the nearest .recorder/; created if needed).",
)
@click.option("--experiment", "-e", help="The experiment to import into (default: the name the source suggests).")
@click.option("--trajectory", help="pypet: import only this trajectory of the file (default: every one).")
@click.option("--mlflow-experiment", help="mlflow: import only this MLflow experiment (default: every one).")
@click.option(
    "--artifact-root",
    "artifact_roots",
    multiple=True,
    type=click.Path(file_okay=False),
    help="mlflow: a folder outside SOURCE where its artifacts may be read (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Write nothing; report what would be imported.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@_store_option
@click.pass_context
def import_(
    ctx: click.Context,
    tool: str,
    source: str,
    into: str | None,
    experiment: str | None,
    trajectory: str | None,
    mlflow_experiment: str | None,
    artifact_roots: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
) -> None:
    """Import a psweep, MLflow or pypet study from SOURCE into a store.

    SOURCE is psweep's calc/database.pk (or its calc dir), an MLflow
    tracking store (mlflow.db, or an mlruns/ folder), or a pypet HDF5 file.
    Parameters become psets (so a sweep with skip="done" finds them done),
    results typed results, times, status, host and git commit where the
    source has them; what cannot be mapped goes to notes or config and is
    listed. Importing again adds only runs not imported before. Everything
    is written in one transaction: on an error the store is unchanged.

    psweep's database is a pickle, and unpickling runs code from the file:
    import only your own files.
    """
    from ..importing.api import import_source

    given: dict[str, tuple[str, object]] = {
        "--trajectory": ("pypet", trajectory),
        "--mlflow-experiment": ("mlflow", mlflow_experiment),
        "--artifact-root": ("mlflow", artifact_roots),
    }
    wrong = [option for option, (owner, value) in given.items() if value and owner != tool]
    if wrong:
        raise click.UsageError(f"{', '.join(wrong)} is not an option of importing from {tool}")
    options = {"trajectory": trajectory, "experiment": mlflow_experiment, "artifact_roots": artifact_roots}
    store = into if into is not None else ctx.obj["store"]
    report = import_source(tool, source, store, experiment, dry_run, options)
    if as_json:
        click.echo(_json(report.as_dict()))
        return
    for line in report.lines():
        click.echo(_clean(line))


# -- curation: tag, untag, note, rm, restore, purge -------------------------------------------------------


def _selection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that pick runs for a curation: by id (--run), or in an experiment (--where, --status, --all)."""
    for option in reversed(
        [
            click.option("--experiment", "-e", help="Pick runs of this experiment (with --where, --status or --all)."),
            click.option("--where", help='With --experiment: an SQL condition over its view, e.g. "b = 8".'),
            click.option(
                "--status",
                type=click.Choice(["done", "failed", "interrupted", "running"]),
                help="With --experiment: only runs with this status.",
            ),
            click.option(
                "--all",
                "all_runs",
                is_flag=True,
                help="With --experiment: every run (also needed when --where matches every run).",
            ),
            click.option("--dry-run", is_flag=True, help="Only say how many runs would be changed."),
        ]
    ):
        command = option(command)
    return command


_VERBS = {"tagged": "tag", "untagged": "untag", "noted": "note", "deleted": "delete", "restored": "restore"}


def _curated(report: Any, what: str, experiment: str | None) -> None:
    """One line saying what a curation did, or that it matched nothing (exit 0 either way)."""
    n = len(report.run_ids)
    if not n:
        click.echo(f"no run matched{f' in experiment {_clean(experiment)}' if experiment else ''}; nothing changed")
    elif report.dry_run:
        click.echo(f"would {_VERBS[what]} {n} run{'s' if n != 1 else ''} (dry run: nothing changed)")
    else:
        click.echo(f"{what} {n} run{'s' if n != 1 else ''} ({report.changed} changed)")


@main.command()
@click.argument("tags", nargs=-1, required=True)
@click.option("--run", "-r", "run_ids", multiple=True, help="A run to tag (repeat for several).")
@_selection_options
@_store_option
@click.pass_context
def tag(ctx: click.Context, /, tags: tuple[str, ...], run_ids: tuple[str, ...], **pick: Any) -> None:
    """Give runs the tags TAGS: the runs named by --run, or picked by --experiment with --where/--status/--all.

    \b
    recorder tag good -r 5f2c01ab -r 77e0aa12
    recorder tag lr-sweep baseline -e lorenz --where "b = 8"

    A tag is a short name without spaces, commas or control characters.
    Filter by it with `recorder log --tag T`, `recorder runs EXP --tag T`,
    db.df(EXP, tag=T); the views have a `tags` column (sorted, comma-joined).
    """
    from ..shards.curate import tag as tag_runs

    report = tag_runs(list(run_ids) or None, tags=tags, store=ctx.obj["store"], **pick)
    _curated(report, "tagged", pick["experiment"])


@main.command()
@click.argument("tags", nargs=-1, required=True)
@click.option("--run", "-r", "run_ids", multiple=True, help="A run to untag (repeat for several).")
@_selection_options
@_store_option
@click.pass_context
def untag(ctx: click.Context, /, tags: tuple[str, ...], run_ids: tuple[str, ...], **pick: Any) -> None:
    """Take the tags TAGS off runs (picked as by `recorder tag`)."""
    from ..shards.curate import untag as untag_runs

    report = untag_runs(list(run_ids) or None, tags=tags, store=ctx.obj["store"], **pick)
    _curated(report, "untagged", pick["experiment"])


@main.command()
@click.argument("text")
@click.option("--run", "-r", "run_ids", multiple=True, help="A run to note (repeat for several).")
@_selection_options
@_store_option
@click.pass_context
def note(ctx: click.Context, /, text: str, run_ids: tuple[str, ...], **pick: Any) -> None:
    """Add the note TEXT to runs (picked as by `recorder tag`), with its time, user and host.

    \b
    recorder note "overfits after epoch 40" -r 5f2c01ab

    Notes are never edited: a later note shows instead in log and runs;
    show lists them all. A note has at most 64 KiB. TEXT - reads the note from stdin.
    """
    from ..shards.curate import note as note_runs

    if text == "-":
        text = sys.stdin.read()

    report = note_runs(list(run_ids) or None, text=text, store=ctx.obj["store"], **pick)
    _curated(report, "noted", pick["experiment"])


@main.command()
@click.argument("run_ids", metavar="[RUN]...", nargs=-1)
@_selection_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_store_option
@click.pass_context
def rm(ctx: click.Context, /, run_ids: tuple[str, ...], yes: bool, **pick: Any) -> None:
    """Delete runs softly: the RUNs named, or those picked by --experiment with --where/--status/--all.

    \b
    recorder rm 5f2c01ab
    recorder rm -e lorenz --status failed
    recorder rm -e lorenz --all --yes

    Deleted runs leave the views, df, log, runs and skip="done" (their psets
    run again) but stay in the store: `recorder restore` brings them back,
    `recorder log --deleted` lists them, `recorder purge` removes them for
    good. Picking by --experiment asks for confirmation unless --yes. A
    running run is refused.
    """
    from ..shards.curate import rm as rm_runs

    ids = list(run_ids) or None
    if pick["experiment"] is not None and not yes and not pick["dry_run"]:
        found = rm_runs(ids, store=ctx.obj["store"], **{**pick, "dry_run": True})
        if not found.run_ids:
            _curated(found, "deleted", pick["experiment"])
            return
        n = len(found.run_ids)
        click.confirm(f"delete {n} run{'s' if n != 1 else ''} of {_clean(pick['experiment'])}?", abort=True)
    report = rm_runs(ids, store=ctx.obj["store"], **pick)
    _curated(report, "deleted", pick["experiment"])


@main.command()
@click.argument("run_ids", metavar="[RUN]...", nargs=-1)
@_selection_options
@_store_option
@click.pass_context
def restore(ctx: click.Context, /, run_ids: tuple[str, ...], **pick: Any) -> None:
    """Bring deleted runs back: the RUNs named, or those of --experiment deleted and picked by --where/--status/--all."""
    from ..shards.curate import restore as restore_runs

    report = restore_runs(list(run_ids) or None, store=ctx.obj["store"], **pick)
    _curated(report, "restored", pick["experiment"])


def _age(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``30d``, ``12h``, ``45m`` or ``90s`` as seconds."""
    if value is None:
        return None
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    text = value.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise click.BadParameter(f"{value!r} is not an age; write it like 30d, 12h, 45m or 90s")
    return int(text[:-1]) * units[text[-1]]


@main.command()
@click.option("--older-than", callback=_age, metavar="AGE", help="Only runs deleted at least AGE ago (30d, 12h).")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@_store_option
@click.pass_context
def purge(ctx: click.Context, older_than: float | None, dry_run: bool) -> None:
    """Remove deleted runs for good, with what only they used, then the arrays nothing refers to.

    Refused while a session is recording in the store. Reports the runs
    removed and the bytes freed.
    """
    from ..shards.curate import purge as purge_runs

    report = purge_runs(ctx.obj["store"], older_than_s=older_than, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {report.runs} run{'s' if report.runs != 1 else ''} and {report.files} array files "
        f"({report.bytes / 1e6:.1f} MB, {report.bytes} bytes)"
    )
