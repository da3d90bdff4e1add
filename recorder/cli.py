"""The ``recorder`` command line: thin click commands over the library.

Each command parses its arguments, makes one library call and formats the
answer. A :class:`~recorder.RecorderError` becomes one line on stderr and
exit status 1 (``--debug`` shows the traceback instead). Heavy modules are
imported inside the commands, so ``recorder --help`` starts fast.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .errors import RecorderError
from .version import __version__


class _Group(click.Group):
    """Turns library errors into one line on stderr, unless ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RecorderError as e:
            if ctx.params.get("debug"):
                raise
            click.echo(f"recorder: error: {e}", err=True)
            sys.exit(1)


@click.group(name="recorder", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="recorder")
@click.option("--store", "store", envvar="RECORDER_STORE", type=click.Path(file_okay=False),
              help="The store folder (default: $RECORDER_STORE, else the nearest .recorder/).")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def main(ctx: click.Context, store: str | None, debug: bool) -> None:
    """Record numerical experiments and parameter studies in a SQLite provenance database.

    A store is a folder with recorder.sqlite and objects/; record into it from
    Python with recorder.Recorder or @recorder.experiment. Run ids may be
    abbreviated to any unique prefix.
    """
    ctx.obj = {"store": store}


def _open(ctx: click.Context) -> Any:
    """Open the store for reading; recorder's warnings (e.g. crashed sessions left for later) as one line each."""
    import warnings

    from .errors import RecorderWarning
    from .query import open as open_store

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


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _pairs(values: dict[str, Any], limit: int = 60) -> str:
    text = " ".join(f"{k}={_short(v)}" for k, v in values.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """A table for people: rich on a terminal, aligned plain text otherwise."""
    if _interactive():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, box=None, header_style="bold")
        for row in rows:
            table.add_row(*row)
        console = Console()
        with console.capture() as captured:
            console.print(table)
        return captured.get().rstrip("\n")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@main.command()
@click.argument("experiment", required=False)
@click.option("-n", "limit", type=click.IntRange(min=1), help="Show at most N runs.")
@click.option("--status", type=click.Choice(["done", "failed", "interrupted", "running"]), help="Only runs with this status.")
@click.option("--since", help="Only runs started on or after this date (2026-11-23, 2026-11-23T08:00).")
@click.option("--oneline", is_flag=True, help="One short line per run.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one run each, for programs.")
@click.pass_context
def log(ctx: click.Context, experiment: str | None, limit: int | None, status: str | None, since: str | None,
        oneline: bool, as_json: bool) -> None:
    """Show runs, newest first, like git log: id, experiment, status, start, duration, params, results."""
    from . import history

    with _open(ctx) as db:
        entries = history.log(db, experiment, limit=limit, status=status, since=since)
        if as_json:
            import json

            for entry in entries:
                click.echo(json.dumps(entry, default=str))
            return
        if oneline:
            lines = (f"{e['run_id']} {e['status']:<11} {e['experiment']} {_pairs(e['params'], 40)}"
                     f" {_pairs(e['results'], 40)}" for e in entries)
        else:
            lines = (
                f"run {e['run_id']}  {e['status']}\n"
                f"  experiment {e['experiment']}   started {e['time_start']}"
                f"   took {_short(e['duration_s'])} s   code {str(e['env_sha'])[:12]}\n"
                f"  params   {_pairs(e['params'], 200)}\n"
                f"  results  {_pairs(e['results'], 200)}\n"
                for e in entries
            )
        if limit is None and _interactive():
            click.echo_via_pager(line + "\n" for line in lines)
        else:
            for line in lines:
                click.echo(line)


@main.command()
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Everything as JSON, for programs.")
@click.pass_context
def show(ctx: click.Context, run: str, as_json: bool) -> None:
    """Show everything about one RUN: params, results, status, traceback, output, session."""
    from . import history

    with _open(ctx) as db:
        info = history.show(db, run)
    if as_json:
        click.echo(_json(info))
        return
    session = info["session"]
    out = [
        f"run {info['run_id']}  {info['status']}",
        f"experiment   {info['experiment']}",
        f"started      {info['time_start']}   took {_short(info['duration_s'])} s   seed {info['seed']}",
        f"pset         {info['pset_hash']}",
        "params", *(f"  {k} = {v!r}" for k, v in info["params"].items()),
        "results",
    ]
    for name, entry in info["results"].items():
        if "array" in entry:
            a = entry["array"]
            where = "inline" if a.get("inline") else f"object {a['digest'][:16]}"
            text = f"array {a['dtype']} shape {tuple(a['shape'] or ())} ({a['bytes']} bytes, {where})"
        elif "bytes" in entry:
            text = f"{entry['bytes']} bytes"
        else:
            text = repr(entry["value"])
        out.append(f"  {name} = {text}" + (f"   # {entry['comment']}" if "comment" in entry else ""))
    if info["comment"]:
        out.append(f"comment      {info['comment']}")
    out += [
        f"session      {session['id']}  ({session['status']})",
        f"  code       {session['git_commit'] or '(no git)'}"
        + (f" on {session['git_branch']}" if session["git_branch"] else "")
        + (" (dirty)" if session["git_dirty"] else "") + (" (auto-committed)" if session["git_auto_committed"] else ""),
        f"  host       {session['host']}   user {session['user']}",
        f"  python     {session['python']}   on {session['platform']}",
        f"  packages   {len(session['packages'])} (fingerprint {session['fingerprint']})",
    ]
    if info["error"]:
        out += ["traceback", *("  " + line for line in info["error"].rstrip().splitlines())]
    if info["output"]:
        out += ["output", *("  " + line for line in info["output"].rstrip().splitlines())]
    click.echo("\n".join(out))


@main.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--code", is_flag=True, help="Also show the git diff between the two runs' commits.")
@click.option("--json", "as_json", is_flag=True, help="The differences as JSON.")
@click.pass_context
def diff(ctx: click.Context, run_a: str, run_b: str, code: bool, as_json: bool) -> None:
    """Show how two runs differ: parameters, results, environment, packages (and code with --code)."""
    from . import history

    with _open(ctx) as db:
        changes = history.diff(db, run_a, run_b)
    patch = None
    if code:
        from .gitinfo import code_diff

        commits, repos = changes["commits"], changes["repos"]
        if None in commits or repos[0] is None:
            raise RecorderError("--code needs both runs recorded with git (a commit or a snapshot)")
        patch = code_diff(repos[0], commits[0], commits[1])
    if as_json:
        click.echo(_json({**changes, "code": patch} if code else changes))
        return
    a, b = changes["runs"]
    out = [f"--- run {a}", f"+++ run {b}"]
    for section in ("params", "results", "environment"):
        for name, (left, right) in changes[section].items():
            out.append(f"{section[:-1] if section != 'environment' else 'env'} {name}: {left!r} → {right!r}")
    packages = changes["packages"]
    out += [f"package +{k} {v}" for k, v in packages["added"].items()]
    out += [f"package -{k} {v}" for k, v in packages["removed"].items()]
    out += [f"package {k}: {old} → {new}" for k, (old, new) in packages["changed"].items()]
    if len(out) == 2:
        out.append("(no differences in parameters, results or environment)")
    if patch is not None:
        out.append(patch.rstrip() or "(no code differences)")
    click.echo("\n".join(out))


@main.command()
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="Comma-separated values, for programs.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one row each.")
@click.pass_context
def sql(ctx: click.Context, query: str, as_csv: bool, as_json: bool) -> None:
    """Run a read-only SQL QUERY on the store (its views included) and show the rows."""
    import csv
    import json

    with _open(ctx) as db:
        headers, rows = db.rows(query)
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(headers)
        writer.writerows(rows)
    elif as_json:
        for row in rows:
            click.echo(json.dumps(dict(zip(headers, row)), default=lambda v: v.hex() if isinstance(v, bytes) else str(v)))
    else:
        click.echo(_table(headers, [[_short(v) if not isinstance(v, bytes) else v.hex() for v in row] for row in rows]))


@main.command()
@click.argument("experiment")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="The file: .csv, .jsonl or .parquet (needs pyarrow).")
@click.option("--status", default="done", show_default=True,
              type=click.Choice(["done", "failed", "interrupted", "running", "all"]), help="Which runs.")
@click.pass_context
def export(ctx: click.Context, experiment: str, output: str, status: str) -> None:
    """Write an EXPERIMENT's runs (params, scalar results, run columns) to a file."""
    with _open(ctx) as db:
        rows = db.export(experiment, output, status=None if status == "all" else status)
    click.echo(f"wrote {rows} runs of {experiment} to {output}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="As JSON, for programs.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the store: path, size, experiments and their runs by status, open sessions, objects."""
    from . import history

    with _open(ctx) as db:
        info = history.status(db)
    if as_json:
        click.echo(_json(info))
        return
    click.echo(f"store    {info['store']}  (schema {info['schema_version']}, database {info['database_bytes'] / 1e6:.1f} MB)")
    click.echo(f"objects  {info['objects']} arrays, {info['object_bytes'] / 1e6:.1f} MB")
    headers = ["experiment", "runs", "done", "failed", "interrupted", "running"]
    click.echo(_table(headers, [[str(e[h]) for h in headers] for e in info["experiments"]]))
    for session in info["open_sessions"]:
        click.echo(f"recording: session {session['session_id']} on {session['host']} (pid {session['pid']}), "
                   f"{session['running_runs']} runs in flight")


@main.command()
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Re-hash every stored array and check every reference; exit 1 if anything is missing or corrupt."""
    from .maintenance import verify as verify_store

    problems = verify_store(ctx.obj["store"])
    for p in problems:
        where = f"{p.run_id} {p.name}: " if p.run_id else ""
        click.echo(f"{p.what}: {where}{p.digest or ''} {p.detail}".replace("  ", " "), err=True)
    if problems:
        sys.exit(1)
    click.echo("ok: every array is there and matches its digest")


@main.command()
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.pass_context
def gc(ctx: click.Context, dry_run: bool) -> None:
    """Remove stored arrays that no run or config refers to, and report the bytes freed."""
    from .maintenance import gc as collect

    report = collect(ctx.obj["store"], dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {report.files} files ({report.bytes / 1e6:.1f} MB) and {report.rows} object rows")


@main.command()
@click.argument("run")
@click.argument("folder", required=False, type=click.Path(file_okay=False))
@click.pass_context
def checkout(ctx: click.Context, run: str, folder: str | None) -> None:
    """Check out the code a RUN ran (its session's commit or snapshot) as a git worktree in FOLDER.

    A run recorded with git="record" gets its recorded uncommitted changes
    applied. Without FOLDER, the worktree goes beside the repository.
    """
    import shlex

    from . import history

    with _open(ctx) as db:
        done = history.checkout(db, run, folder)
    applied = " and applied the recorded uncommitted changes (git='record')" if done.diff_applied else ""
    click.echo(
        f"checked out {done.commit} (run {done.run_id}){applied} in {done.folder}\n"
        f"remove it with: git -C {shlex.quote(str(done.repo))} worktree remove {shlex.quote(str(done.folder))}"
        + (" --force" if done.diff_applied else "")
    )


@main.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--into", "into", required=True, type=click.Path(file_okay=False),
              help="The store to merge into (created if needed).")
@click.option("--allow-code-mismatch", is_flag=True,
              help="Merge runs of an experiment even when their code (env SHA) differs.")
def merge(sources: tuple[str, ...], into: str, allow_code_mismatch: bool) -> None:
    """Merge the stores SOURCES (shards of cluster jobs) into one store.

    Runs the destination has already are skipped, so merging twice changes
    nothing. An experiment whose config values (or code, unless
    --allow-code-mismatch) disagree with the destination's is refused, and
    then nothing is written.
    """
    from .merge import merge as merge_stores

    report = merge_stores(list(sources), into, allow_code_mismatch=allow_code_mismatch)
    click.echo(
        f"merged {len(sources)} store{'s' if len(sources) != 1 else ''} into {into}: "
        f"{report.runs} runs added, {report.skipped} already there, "
        f"{report.objects} arrays added ({report.object_bytes / 1e6:.1f} MB)"
    )


@main.command()
@click.argument("source", type=click.Path(file_okay=False))
@click.option("--into", "into", required=True, type=click.Path(file_okay=False),
              help="The store to copy the runs into (created if needed).")
@click.option("--where", help="SQL condition over the experiment's view, e.g. \"b = 8 AND energy > 1\".")
@click.option("--experiment", "-e", help="Only this experiment's runs.")
def extract(source: str, into: str, where: str | None, experiment: str | None) -> None:
    """Copy the runs of SOURCE that match --where, and what they reference, into another store."""
    from .merge import extract as extract_runs

    report = extract_runs(source, into, where=where, experiment=experiment)
    click.echo(
        f"extracted {report.runs} runs into {into} ({report.skipped} already there), "
        f"{report.objects} arrays ({report.object_bytes / 1e6:.1f} MB)"
    )
