"""The one rule that turns a stored traceback into its exception line (``_error``, ``log``, ``show``, warnings)."""

from __future__ import annotations

import traceback
import warnings
from pathlib import Path

import recorder as rec
from recorder.read.failures import exception_line
from recorder.read.show import log, show


def _formatted(raise_it: object) -> str:
    """The traceback of what ``raise_it()`` raises, formatted as a run stores it."""
    try:
        raise_it()  # type: ignore[operator]
    except BaseException as e:
        return "".join(traceback.format_exception(type(e), e, e.__traceback__))
    raise AssertionError("nothing raised")


def _single() -> None:
    raise ValueError("one line")


def _multi() -> None:
    raise RuntimeError("multi\nline message")


def _chained() -> None:
    try:
        raise KeyError("inner")
    except KeyError as e:
        raise RuntimeError("outer\nsecond line") from e


def _during() -> None:
    try:
        raise KeyError("inner")
    except KeyError:
        raise TypeError("while handling")  # noqa: B904 - the implicit chain is what is tested


def _interrupt() -> None:
    raise KeyboardInterrupt


def test_single_line_message() -> None:
    assert exception_line(_formatted(_single)) == "ValueError: one line"


def test_multi_line_message_keeps_the_exception_type() -> None:
    assert exception_line(_formatted(_multi)) == "RuntimeError: multi line message"


def test_chained_exceptions_give_the_last_one() -> None:
    assert exception_line(_formatted(_chained)) == "RuntimeError: outer second line"
    assert exception_line(_formatted(_during)) == "TypeError: while handling"


def test_keyboard_interrupt_without_message() -> None:
    assert exception_line(_formatted(_interrupt)) == "KeyboardInterrupt"


def test_empty_or_none_traceback() -> None:
    assert exception_line(None) is None
    assert exception_line("") is None
    assert exception_line(" \n\n") is None


def test_a_note_without_traceback_is_given_whole_and_a_bracket_note_is_left_out() -> None:
    assert exception_line("the worker process running this run died") == "the worker process running this run died"
    hinted = _formatted(_multi) + "\n[vsweep ran 8 psets in one chunk; a smaller chunk_size may help]"
    assert exception_line(hinted) == "RuntimeError: multi line message"


def _fails(a: int) -> dict[str, int]:
    if a == 1:
        raise RuntimeError("multi\nline message")
    return {"y": a}


def test_log_show_error_column_and_warning_keep_the_type_of_a_multi_line_error(store: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with rec.Recorder("multi", store=store, git=False) as r:
            frame = r.sweep(_fails, rec.plist("a", [0, 1]))
    expected = "RuntimeError: multi line message"
    assert any(expected in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert frame.loc[frame["a"] == 1, "_error"].tolist() == [expected]
    db = rec.open(store)
    assert db.df("multi", status=None).loc[lambda d: d["a"] == 1, "_error"].tolist() == [expected]
    (entry,) = [e for e in log(db, "multi") if e["status"] == "failed"]
    assert entry["error"] == expected
    assert show(db, entry["run_id"])["error_line"] == expected


def test_a_message_embedding_a_traceback_is_cut_to_the_limit() -> None:
    """JAX's callback errors carry the callback's whole traceback in their message: one line stays short."""
    from recorder.read.failures import LINE_LIMIT, exception_line

    inner = "".join(f'  File "/site-packages/jax/_src/m{i}.py", line {i}, in f{i}\n' for i in range(60))
    error = (
        'Traceback (most recent call last):\n  File "run.py", line 3, in <module>\n    model()\n'
        "jax.errors.JaxRuntimeError: INTERNAL: CpuCallback error calling callback: "
        f"Traceback (most recent call last):\n{inner}ValueError: r too large\n"
    )
    line = exception_line(error)
    assert line is not None and len(line) == LINE_LIMIT and line.endswith("…")
    assert line.startswith("jax.errors.JaxRuntimeError: INTERNAL: CpuCallback error calling callback:")
    assert exception_line("ValueError: " + "x" * (LINE_LIMIT - 12)) == "ValueError: " + "x" * (LINE_LIMIT - 12)
