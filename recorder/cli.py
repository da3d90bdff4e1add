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
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
def main(debug: bool) -> None:
    """Record numerical experiments and parameter studies in a SQLite provenance database.

    A store is a folder with recorder.sqlite and objects/; record into it from
    Python with recorder.Recorder or @recorder.experiment.
    """


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
