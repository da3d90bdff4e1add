"""How values become stored text and back: names, canonical psets, digests, value kinds.

Pure functions and small value types: no database, no files. It may import
:mod:`recorder.errors` and nothing else of recorder (the object store a value
is put into is handed in).
"""
