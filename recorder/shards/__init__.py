"""Whole-store operations: merging shards, extracting runs, their pre-checks, verify and gc; curating runs
(tags, notes, delete, restore, purge: :mod:`recorder.shards.curate`).

It may import :mod:`recorder.sweep` (for its progress line), :mod:`recorder.read`,
:mod:`recorder.store`, :mod:`recorder.codec` and :mod:`recorder.errors`.
"""
