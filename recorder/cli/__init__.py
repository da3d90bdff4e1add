"""The ``recorder`` command line (click only): every command turns into calls of the layers below.

Heavy layers are imported inside the commands, so that ``recorder --help``
stays fast.
"""

from .commands import main

__all__ = ["main"]
