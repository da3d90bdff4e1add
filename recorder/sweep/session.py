"""What the sweep machinery needs of a recording session, as a small interface.

The sweep loop (:mod:`.loop`), vectorised sweeps (:mod:`.vectorised`) and
:class:`recorder.Run` record into a session without knowing the class that
holds it: :class:`recorder.Recorder` implements :class:`Session`, one layer
up, and hands itself in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from ..store.folder import Store
    from ..store.writer import RunWriter

__all__ = ["Session", "Writing"]


class Writing(NamedTuple):
    """An open session's store, its writer and its row key."""

    store: Store
    writer: RunWriter
    session_pk: int


class Session(Protocol):
    """A recording session, as the sweep machinery uses it."""

    #: The experiment's name.
    experiment: str
    #: The experiment-level seed mixed into every run's seed.
    seed: int | None
    #: Arrays of at most this many ``.npy`` bytes are kept in the database.
    inline_limit: int
    #: Runs ended in this session; the sweep machinery adds the runs it records.
    runs_recorded: int
    #: The session's id and env SHA, once it is open.
    id: str | None
    env_sha: str | None

    def writing(self) -> Writing:
        """Open the session if it is not yet, and return what runs are written with.

        :raises RecorderError: when the session was closed.
        """
        ...
