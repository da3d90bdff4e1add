"""The ``recorder`` command line: thin click commands over the library."""

from __future__ import annotations

import click

from .version import __version__


@click.group(name="recorder", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="recorder")
def main() -> None:
    """Record numerical experiments and parameter studies in a SQLite provenance database.

    A store is a folder with recorder.sqlite and objects/; record into it from
    Python with recorder.Recorder or @recorder.experiment.
    """
