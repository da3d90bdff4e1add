"""Importing other tools' studies (psweep, MLflow, pypet) into a store: ``recorder import``.

Each reader (:mod:`recorder.importing.psweep`, :mod:`~recorder.importing.mlflow`,
:mod:`~recorder.importing.pypet`) turns a source on disk into a
:class:`~recorder.importing.source.SourceStudy` of neutral
:class:`~recorder.importing.source.SourceRun` records, without the source
tool installed; one writer puts any such study into a store, idempotently.

It may import :mod:`recorder.shards` (tags and notes), :mod:`recorder.sweep`
(how series are stored), :mod:`recorder.read`, :mod:`recorder.store`, :mod:`recorder.codec`, :mod:`recorder.provenance` and
:mod:`recorder.errors` (not :mod:`recorder.record` or :mod:`recorder.cli`).
"""
