"""Write ``docs/cli.md``, the command-line reference, from the ``--help`` of every ``recorder`` command.

Run it after changing a command's options or help text::

    python docs/gen_cli.py

``tests/test_docs.py`` regenerates the page and fails when the committed file differs, so the page
cannot drift from the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

#: Fixed width, so the page does not depend on the terminal that generated it.
WIDTH = 88
PAGE = Path(__file__).resolve().parent / "cli.md"

HEADER = """# Command line

This page is generated from the `--help` of each command by `docs/gen_cli.py`;
do not edit it by hand (`tests/test_docs.py` fails when it is out of date).
Every command takes the group's options (`--store`, `--debug`) before its name,
for example `recorder --store runs/.recorder log`.
"""


def _help(command: click.Command, name: str, parent: click.Context | None) -> tuple[str, click.Context]:
    """Return the help text of ``command`` as ``--help`` prints it, and its context (for subcommands)."""
    # The command's own context_settings (e.g. ``-h`` as a help option) apply, as they do on the command line.
    settings = {**command.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    ctx = click.Context(command, info_name=name, parent=parent, **settings)
    return command.get_help(ctx), ctx


def _sections(command: click.Command, name: str, parent: click.Context | None, depth: int) -> list[str]:
    """Return the Markdown sections of ``command`` and, for a group, of each of its commands in order."""
    text, ctx = _help(command, name, parent)
    title = ctx.command_path
    out = [f"{'#' * depth} `{title}`\n\n```text\n{text.rstrip()}\n```\n"]
    if isinstance(command, click.Group):
        for sub in command.list_commands(ctx):
            subcommand = command.get_command(ctx, sub)
            if subcommand is not None and not subcommand.hidden:
                out.extend(_sections(subcommand, sub, ctx, min(depth + 1, 6)))
    return out


def render() -> str:
    """Return the whole Markdown page for the current ``recorder.cli.commands.main``."""
    from recorder.cli.commands import main

    return HEADER + "\n" + "\n".join(_sections(main, "recorder", None, 2))


def write(page: Path = PAGE) -> bool:
    """Write the page to ``page``; return whether its content changed."""
    text = render()
    if page.exists() and page.read_text(encoding="utf-8") == text:
        return False
    page.write_text(text, encoding="utf-8")
    return True


if __name__ == "__main__":
    changed = write(Path(sys.argv[1]) if len(sys.argv) > 1 else PAGE)
    print(f"{'wrote' if changed else 'unchanged'}: {sys.argv[1] if len(sys.argv) > 1 else PAGE}")
