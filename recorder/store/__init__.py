"""The store: its folder, its SQLite database and schema, its objects, and the writing of runs.

The layout on disk (:mod:`.layout`, :mod:`.folder`); connections and
migrations (:mod:`.db`, :mod:`.models`); the per-experiment views
(:mod:`.catalog`) and the SQL all views share (:mod:`.viewsql`);
content-addressed arrays (:mod:`.objects`); the crash journal and the
batched writer (:mod:`.journal`, :mod:`.pending`, :mod:`.rows`,
:mod:`.writer`); the experiment functions runs called (:mod:`.functions`); and which sessions are alive (:mod:`.liveness`). It may
import :mod:`recorder.codec` and :mod:`recorder.errors`.
"""
