"""The read side: a read-only :class:`~recorder.read.database.Database`, DataFrames, what the CLI shows,
and whether two runs agree (:mod:`.agreement`).

Nothing here writes to a store. It may import :mod:`recorder.store`,
:mod:`recorder.codec`, :mod:`recorder.provenance` and :mod:`recorder.errors`.
"""
