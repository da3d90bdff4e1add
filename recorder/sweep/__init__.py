"""Running a function over psets: parameter helpers, execution, the sweep loop, pools, vectorised JAX sweeps.

The loop records through a session it is handed (:class:`.session.Session`,
which :class:`recorder.Recorder` implements); it never imports the
Recorder. It may import :mod:`recorder.read`, :mod:`recorder.store`,
:mod:`recorder.codec`, :mod:`recorder.provenance` and :mod:`recorder.errors`.
"""
