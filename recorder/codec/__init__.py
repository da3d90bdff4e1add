"""How values become stored text and back: names, canonical JSON, digests, value kinds, ``.npy`` bytes.

Pure functions and small value types: no database, no files. It may import
:mod:`recorder.errors` and nothing else of recorder (the object store a value
is put into is handed in, typed by :class:`recorder.codec.values.ArrayStore`).

- :mod:`~recorder.codec.hashing`: which names may be used; pset hashes, seeds, text digests.
- :mod:`~recorder.codec.canonical`: the one number codec: how numbers, psets and scalar
  results are written as JSON and read back, each fast path beside its general rule.
- :mod:`~recorder.codec.values`: a result or config value as a ``(kind, value)`` cell and back.
- :mod:`~recorder.codec.npy`: the canonical ``.npy`` bytes of an array and back.
"""
