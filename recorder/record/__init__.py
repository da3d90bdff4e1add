"""Recording: the :class:`~recorder.Recorder` session, its :class:`~recorder.Run`, the ``@experiment`` decorator,
and reruns of recorded runs (:mod:`.rerun`) and of whole sessions (:mod:`.rerun_session`).

The user-facing layer: a session captures the code state and environment,
then records runs itself or through the sweep machinery, to which it hands
itself as a :class:`recorder.sweep.session.Session`. It may import every
layer below (sweep, read, store, codec, provenance, errors), never
:mod:`recorder.shards` or :mod:`recorder.cli`.
"""
