"""Whole-store operations: merging shards, extracting runs, their pre-checks, verify and gc.

It may import :mod:`recorder.sweep` (for its progress line), :mod:`recorder.read`,
:mod:`recorder.store`, :mod:`recorder.codec` and :mod:`recorder.errors`.
"""
