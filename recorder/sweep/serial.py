"""The loop of a serial sweep: call the function on each pset in this process and record the run.

It calls the function as :func:`recorder.sweep.execute.execute` does (by
the same :func:`recorder.sweep.execute.call`) and records it as the sweep's
``record`` does, with one shortcut, since a sweep of fast runs spends most of its time
here: once a run with the same parameter and result names has been
recorded the general way (which checks the names), a run whose results
are all plain numbers (finite floats, 64-bit ints) goes to the writer
with its ``runs.scalars`` JSON made from a template, without encoding
each value (:class:`recorder.codec.canonical.ScalarLayout`). Anything else (None,
arrays, text, NaN, a new name, a failure) takes the general way.

:func:`older_objects_frozen` keeps the garbage collector off the
program's own objects while a sweep runs (any sweep, not only serial ones).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..codec.canonical import ScalarLayout, plain_results, scalar_layout
from ..store.pending import PendingRun
from .execute import Interrupted, Outcome, Where, call, finish, with_context

if TYPE_CHECKING:
    from .tasks import Task

__all__ = ["Recording", "older_objects_frozen", "run_serial"]


@contextlib.contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Keep Python's cyclic garbage collector to the objects made inside the block.

    A sweep keeps about one object per run alive until its batch is
    committed, so objects reach the oldest generation steadily, and every
    so often a full collection walks the whole heap: all the program's
    objects, over and over, for nothing they did (with a big heap, more
    time than the runs themselves). :func:`gc.freeze` sets the objects that
    exist before the sweep aside until it ends; objects made meanwhile are
    collected as usual. Nothing is done when the program froze objects
    itself (unfreezing would undo that).
    """
    if gc.get_freeze_count() or not gc.isenabled():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class Recording(Protocol):
    """What records the runs of a sweep (see ``recorder.sweep.loop._Recording``)."""

    def __call__(self, task: Task, row: PendingRun, outcome: Outcome) -> None:
        """Record a run's outcome, the general way."""

    def plain(
        self,
        task: Task,
        row: PendingRun,
        t0: float,
        duration: float,
        results: dict[str, Any],
        scalars: str,
        names: tuple[str, ...],
    ) -> None:
        """Record a done run whose results are plain numbers, given as ``runs.scalars`` JSON."""

    def plain_chunk(
        self,
        batch: list[tuple[Task, PendingRun]],
        t0: float,
        duration: float,
        scalars: list[str],
        names: tuple[str, ...],
        columns: Mapping[str, list[Any]],
    ) -> None:
        """Record many done runs whose results are plain numbers at once, each given as ``runs.scalars`` JSON."""


def run_serial(
    func: Callable[..., Any],
    to_run: Iterator[tuple[Task, PendingRun]],
    started: Callable[[PendingRun], None],
    record: Recording,
    fixed: tuple[str, int, bool, str],
    where: Where | None = None,
) -> None:
    """Run every ``(task, row)`` of ``to_run`` in this process, one after the other, and record each.

    :param started: told of each run before its call (the writer's ``started``).
    :param fixed: the arguments of :func:`execute` after the seed: objects root,
        inline limit, capture, function name.
    :param where: the session's experiment and work folders, for :func:`recorder.current_run`.
    :raises KeyboardInterrupt: (or SystemExit) after recording the run it interrupted.
    """
    objects_root, inline_limit, capture, func_name = fixed
    # (parameter names, result names) recorded once the general way → their layout.
    plain: dict[tuple[tuple[str, ...], tuple[str, ...]], ScalarLayout] = {}
    for task, row in to_run:
        started(row)
        try:
            _, params, _, hash_, seed, names = task
            returned, t0, duration, output, failed, context = call(func, params, seed, capture, row.id, hash_, where)
            if failed is not None:  # the function raised
                record(task, row, failed if context is None else with_context(failed, context, *fixed[:2]))
                continue
            if output is not None or context is not None:  # captured output, current_run(): the general way
                outcome = finish(returned, names, t0, duration, output, objects_root, inline_limit, func_name, context)
                record(task, row, outcome)
                continue
            key = (names, tuple(returned)) if type(returned) is dict and returned else None
            layout = plain.get(key) if key is not None else None
            if layout is not None:
                values = tuple(returned.values()) if layout.in_order else tuple([returned[n] for n in layout.order])
                if plain_results(values):
                    record.plain(task, row, t0, duration, returned, layout.template % values, layout.order)
                    continue
            record(task, row, finish(returned, names, t0, duration, None, objects_root, inline_limit, func_name))
            if key is not None and row.status == "done" and len(plain) < 1024:
                plain[key] = scalar_layout(key[1])  # its names passed every check: the shortcut may take them
        except Interrupted as e:
            record(task, row, e.outcome)
            raise (e.__cause__ or KeyboardInterrupt()) from None
