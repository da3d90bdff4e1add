"""The ``@experiment`` decorator: a function whose every call is a recorded run."""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, overload

from ..codec.values import DEFAULT_INLINE_LIMIT
from ..errors import RecorderError, ResultsNotNamed
from ..sweep.loop import Binder, dry_run, function_key
from .recorder import Recorder

if TYPE_CHECKING:
    from concurrent.futures import Executor

    import pandas as pd

__all__ = ["Experiment", "experiment"]


def _resolve(module: str, qualname: str) -> Experiment[..., Any]:
    """Find a decorated experiment again in a worker process (how it is pickled)."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not isinstance(found, Experiment):
        raise RecorderError(
            f"{module}.{qualname} is {type(found).__name__}, not the experiment it was in the sweeping process; "
            "bind the experiment to a module-level name"
        )
    return found


def _lookup(module: str, qualname: str) -> Any:
    """What ``module.qualname`` is in this process (None when there is no such name); imports nothing."""
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found


_P = ParamSpec("_P")
# What an experiment function returns: a dict of results, or None.
_R = TypeVar("_R", bound="Mapping[str, Any] | None")


class _Body:
    """The undecorated function of an experiment, picklable through the experiment (for pools)."""

    def __init__(self, experiment: Experiment[..., Any]) -> None:
        self.experiment = experiment
        self.__wrapped__ = experiment.func  # what the pool checks workers can import

    def __reduce__(self) -> tuple[Any, ...]:
        return _Body, (self.experiment,)

    @property
    def __recorder_function__(self) -> Callable[..., Any]:
        """The function it calls (see :func:`recorder.provenance.environment.function_identity`)."""
        return self.experiment.func

    def __call__(self, **kwargs: Any) -> Any:
        return self.experiment.func(**kwargs)


class Experiment(Generic[_P, _R]):
    """A function recorded as an experiment; made by :func:`experiment`.

    Calling it records one run (one session) and returns what the function
    returned. :meth:`sweep` runs it on many psets in one session.
    """

    def __init__(
        self,
        func: Callable[_P, _R],
        name: str,
        *,
        store: str | os.PathLike[str] | None = None,
        git: str | bool | None = "auto",
        seed: int | None = None,
        config: Mapping[str, Any] | None = None,
        message: str | None = None,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
        flush_interval: float | None = None,
        workdir: str | os.PathLike[str] | None = None,
        keep_files: str = "store",
        max_file_bytes: int | None = None,
    ) -> None:
        if not callable(func):
            raise RecorderError(f"@experiment decorates a function, not {type(func).__name__}")
        self.func = func
        self.name = name
        self.binder = Binder(func)
        self._options: dict[str, Any] = {
            "store": store,
            "git": git,
            "seed": seed,
            "config": dict(config or {}),
            "message": message,
            "inline_limit": inline_limit,
            # The runs' work folders and files: for its calls and its sweeps (a sweep's own options win).
            "workdir": workdir,
            "keep_files": keep_files,
            "max_file_bytes": max_file_bytes,
        }
        if flush_interval is not None:
            self._options["flush_interval"] = flush_interval
        Recorder(name, **self._options)  # checks the options now, at decoration time
        functools.update_wrapper(self, func)

    @property
    def __recorder_function__(self) -> Callable[_P, _R]:
        """The decorated function (see :func:`recorder.provenance.environment.function_identity`)."""
        return self.func

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by name, so worker processes find the experiment by importing its module.

        The name is the function's, when the experiment decorates it in place;
        else a module-level name bound to this experiment (``fast =
        experiment("fast")(compute)``).
        """
        import pickle

        module, qualname = self.func.__module__, self.func.__qualname__
        if "<locals>" in qualname or ("<lambda>" in qualname and self._bound_name() is None):
            raise pickle.PicklingError(
                f"experiment {self.name!r} is defined inside a function ({qualname}), where other "
                "processes cannot import it"
            )
        if _lookup(module, qualname) is not self:
            bound = self._bound_name()
            if bound is None:
                raise pickle.PicklingError(
                    f"experiment {self.name!r} (of {module}.{qualname}) is bound to no module-level name of "
                    f"{module}, so other processes cannot find it; assign it to one"
                )
            qualname = bound
        return _resolve, (module, qualname)

    def _bound_name(self) -> str | None:
        """A module-level name of the function's module bound to this experiment, if any."""
        namespace = getattr(sys.modules.get(self.func.__module__), "__dict__", {})
        return next((name for name, value in list(namespace.items()) if value is self), None)

    def _for_workers(self) -> Callable[..., Any]:
        """What worker processes are sent to run: something they resolve to this experiment's function.

        The function itself when its module and name find it (it was wrapped
        under another name, ``fast = experiment("fast")(compute)``); else the
        experiment, pickled by its name (decorated in place).
        """
        found: object = _lookup(self.func.__module__, self.func.__qualname__)
        if found is self.func:
            return self.func
        return _Body(self)

    def recorder(self, **overrides: Any) -> Recorder:
        """Return a :class:`Recorder` for a session of this experiment (options as decorated, then overrides)."""
        return Recorder(self.name, **{**self._options, **overrides})

    def _dry_run(self, params: Iterable[Mapping[str, Any]], skip: str | None) -> pd.DataFrame:
        """What a sweep of ``params`` would run and skip (``simulate=True``)."""
        return dry_run(
            self.name, self.binder, params, store=self._options["store"], seed=self._options["seed"], skip=skip
        )

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Record one run of the function with these arguments and return its results."""
        params = self.binder.bind(*args, **kwargs)
        # Called by keyword with the bound arguments, which the signature _P does not describe.
        func = cast("Callable[..., _R]", self.func)
        with self.recorder() as r:
            writing = r.writing()
            one = r.run(params)
            one._function = function_key(writing.writer, writing.session_pk, self.func)
            with one as run:
                returned = func(**params)
                if returned is not None:
                    if not isinstance(returned, Mapping):
                        raise RecorderError(
                            f"{self.binder.name} returned {type(returned).__name__}; an experiment "
                            "function returns a dict of results (name → value) or None"
                        )
                    strange = next((key for key in returned if not isinstance(key, str)), None)
                    if strange is not None:
                        raise ResultsNotNamed(
                            f"{self.binder.name} returned a dict with the key {strange!r} "
                            f"({type(strange).__name__}); result names are str: return {{'name': value, …}}"
                        )
                    run.log(**returned)
        return returned

    def sweep(
        self,
        params: Iterable[Mapping[str, Any]],
        *,
        workers: int = 1,
        executor: Executor | None = None,
        skip: str | None = "done",
        simulate: bool = False,
        on_error: str = "record",
        progress: bool | None = None,
        capture: bool = False,
        message: str | None = None,
        return_df: bool = True,
        workdir: str | os.PathLike[str] | None = None,
        keep_files: str | None = None,
        max_file_bytes: int | None = None,
        fixed: Mapping[str, Any] | None = None,
        batch_size: int | str = "auto",
    ) -> pd.DataFrame | None:
        """Run the experiment on every pset in one session; see :meth:`recorder.Recorder.sweep`."""
        if simulate:
            return self._dry_run(params, skip)
        from ..sweep.loop import check_options, sweep
        from ..sweep.tasks import check_batch_size

        check_options(skip, on_error, workers, executor)
        check_batch_size(batch_size)
        func = self.func if executor is None and workers == 1 else self._for_workers()
        if executor is not None or workers > 1:
            from ..sweep.pool import check_workers

            check_workers(func, self.binder.name, executor, workers)  # before the session: a refusal writes nothing
        overrides = {"message": message} if message is not None else {}
        with self.recorder(**overrides) as r:
            return sweep(
                r,
                func,
                params,
                binder=self.binder,
                workers=workers,
                executor=executor,
                skip=skip,
                on_error=on_error,
                progress=progress,
                capture=capture,
                return_df=return_df,
                workdir=workdir,
                keep_files=keep_files,
                max_file_bytes=max_file_bytes,
                fixed=fixed,
                batch_size=batch_size,
            )

    def vsweep(
        self,
        params: Iterable[Mapping[str, Any]],
        *,
        chunk_size: int | str = "auto",
        static: str | Iterable[str] = (),
        skip: str | None = "done",
        simulate: bool = False,
        on_error: str = "record",
        progress: bool | None = None,
        compile_cache: bool = False,
        memory_budget: int | None = None,
        message: str | None = None,
        return_df: bool = True,
    ) -> pd.DataFrame | None:
        """Run a JAX experiment on every pset in vectorised chunks, one recorded run per pset.

        The function must be a pure JAX function of its parameters, returning
        a dict of arrays and numbers. The psets are stacked into arrays and run
        ``chunk_size`` at a time through one compiled ``jax.jit(jax.vmap(f))``
        (the last chunk padded, so one shape compiles once); each pset is then
        recorded as its own run, with the pset hash and results
        :meth:`sweep` would give it, so ``skip="done"`` works across both.
        Needs jax (``pip install 'recorder[jax]'``).

        :param chunk_size: psets per chunk, or ``"auto"``: as many as fit a
            memory budget, estimated from the function's outputs and
            intermediates (:func:`jax.eval_shape`, :func:`jax.make_jaxpr`);
            the chosen size is recorded in the session's ``jax`` column.
        :param static: parameters passed as Python values rather than
            stacked (loop lengths, shapes, strings); one compilation per value.
        :param compile_cache: keep compiled programs in ``<store>/jax-cache``
            (see :func:`recorder.jax.use_compile_cache`), so another process
            does not compile again.
        :param memory_budget: bytes a chunk may use with ``chunk_size="auto"``;
            default half the accelerator's free memory, or a quarter of the
            host's available memory on a CPU.
        :param skip, simulate, on_error, progress, message, return_df: as for :meth:`sweep`.
        :returns: as :meth:`sweep`; ``_duration_s`` of a run is its share of its chunk's time.
        :raises RecorderError: before anything runs, when a parameter is not a
            number (suggesting ``static`` or :meth:`sweep`), varies in type,
            or the function cannot be traced.
        """
        if simulate:
            return self._dry_run(params, skip)
        from ..sweep import vectorised  # imports jax before the session starts, so that the session describes it

        overrides = {"message": message} if message is not None else {}
        with self.recorder(**overrides) as r:
            return vectorised.vsweep(
                r,
                self.func,
                params,
                binder=self.binder,
                chunk_size=chunk_size,
                static=static,
                skip=skip,
                on_error=on_error,
                progress=progress,
                return_df=return_df,
                compile_cache=compile_cache,
                memory_budget=memory_budget,
            )

    def __repr__(self) -> str:
        return f"<experiment {self.name!r}: {self.binder.name}{self.binder.signature}>"


# Bare (@experiment) gives the Experiment; with options (@experiment("name", …)) a decorator.
# Either way the Experiment keeps the function's signature (_P) and return type (_R) for type checkers.
@overload
def experiment(
    name: Callable[_P, _R],
    *,
    store: str | os.PathLike[str] | None = ...,
    git: str | bool | None = ...,
    seed: int | None = ...,
    config: Mapping[str, Any] | None = ...,
    message: str | None = ...,
    inline_limit: int = ...,
    flush_interval: float | None = ...,
    workdir: str | os.PathLike[str] | None = ...,
    keep_files: str = ...,
    max_file_bytes: int | None = ...,
) -> Experiment[_P, _R]: ...


@overload
def experiment(
    name: str | None = ...,
    *,
    store: str | os.PathLike[str] | None = ...,
    git: str | bool | None = ...,
    seed: int | None = ...,
    config: Mapping[str, Any] | None = ...,
    message: str | None = ...,
    inline_limit: int = ...,
    flush_interval: float | None = ...,
    workdir: str | os.PathLike[str] | None = ...,
    keep_files: str = ...,
    max_file_bytes: int | None = ...,
) -> Callable[[Callable[_P, _R]], Experiment[_P, _R]]: ...


def experiment(
    name: str | Callable[..., Any] | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
    git: str | bool | None = "auto",
    seed: int | None = None,
    config: Mapping[str, Any] | None = None,
    message: str | None = None,
    inline_limit: int = DEFAULT_INLINE_LIMIT,
    flush_interval: float | None = None,
    workdir: str | os.PathLike[str] | None = None,
    keep_files: str = "store",
    max_file_bytes: int | None = None,
) -> Experiment[..., Any] | Callable[[Callable[..., Any]], Experiment[..., Any]]:
    """Decorate a function as an experiment; usable bare (``@experiment``) or with options.

    ``@experiment("lorenz", store="runs")``: every call of the function is a
    recorded run (its arguments, defaults included, are the parameters; the
    dict it returns, the results), and ``func.sweep(params)`` runs many.

    :param name: experiment name; default the function's name.
    :param store, git, seed, config, message, inline_limit, flush_interval:
        as for :class:`recorder.Recorder`.
    :param workdir, keep_files, max_file_bytes: where the runs' work folders
        go and what becomes of the files they leave there, as for
        :class:`recorder.Recorder`: for every call and every ``.sweep`` (whose
        own ``workdir=``, ``keep_files=``, ``max_file_bytes=`` win).
    """

    def make(func: Callable[..., Any], exp_name: str) -> Experiment[..., Any]:
        return Experiment(
            func,
            exp_name,
            store=store,
            git=git,
            seed=seed,
            config=config,
            message=message,
            inline_limit=inline_limit,
            flush_interval=flush_interval,
            workdir=workdir,
            keep_files=keep_files,
            max_file_bytes=max_file_bytes,
        )

    if callable(name):
        return make(name, name.__name__)
    if name is not None and not isinstance(name, str):
        raise RecorderError(f"@experiment takes an experiment name (a str), not {type(name).__name__}")

    def decorate(func: Callable[..., Any]) -> Experiment[..., Any]:
        return make(func, name or func.__name__)

    return decorate
