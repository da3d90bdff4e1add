"""The session journal read back: every line is checked as strictly as a live run; a bad line is skipped and reported.

The good lines are real: written by a real session (its journal copied
while it is open). The bad ones are those lines altered one field at a
time, or garbage.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import recorder as rec
from recorder.codec.hashing import pset_hash
from recorder.errors import RecorderWarning
from recorder.store.journal import read_journal

SESSION = "0" * 24


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Journal lines of three runs of a real session, with results of every kind and comments."""
    store = tmp_path_factory.mktemp("journal") / "store"
    with rec.Recorder("e", store=store, git=False, flush_interval=60) as r:
        for i in range(3):
            with r.run(i=i, x=0.5 * i, name=f"n{i}") as run:
                run.log(
                    y=i,
                    s=f"text {i}",
                    b=bytes([i]) * 3,
                    big=2**70,
                    nan=float("nan"),
                    inf=float("inf"),
                    flag=True,
                    none=None,
                    nested={"a": [1, 2.5]},
                    small=np.arange(3) + i,
                    large=np.arange(20_000, dtype=np.float64) + i,
                    f32=np.float32(1.5),
                    c=np.complex64(1 + 2j),
                )
                run.log(comment=f"on z {i}", z=i)
                run.log(comment=f"on the run {i}")
        (journal,) = (store / "locks").glob("*.journal.*")
        content = journal.read_bytes().rstrip(b"\0")
    found = content.split(b"\n")[:-1]
    assert len(found) == 3
    return found


def write(folder: Path, *lines: bytes, number: int = 0) -> Path:
    """A journal file of the session ``SESSION`` holding these lines, followed by unused zeros."""
    folder.mkdir(exist_ok=True)
    path = folder / f"{SESSION}.journal.{number}"
    path.write_bytes(b"".join(lines) + b"\0" * 4096)
    return path


def test_good_lines_come_back_whole(tmp_path: Path, lines: list[bytes]) -> None:
    write(tmp_path / "locks", *(line + b"\n" for line in lines))
    runs = read_journal(tmp_path / "locks", SESSION)
    assert [json.loads(run.canonical)["i"] for run in runs] == [0, 1, 2]
    run = runs[1]
    assert run.status == "done" and run.comment == "on the run 1" and run.result_comments == {"z": "on z 1"}
    assert run.results["b"].value == b"\1\1\1" and run.results["big"] == ("int", str(2**70), None)
    assert run.results["large"].kind == "object" and run.results["large"].object[0] == run.results["large"].value


def test_lines_carry_the_function_and_rerun_of(tmp_path: Path, lines: list[bytes]) -> None:
    record = json.loads(lines[0])
    assert len(record) == 17 and record[12:14] == [None, None]  # a run of Recorder.run: neither
    record[12], record[13] = 7, "ab" * 12
    write(tmp_path / "locks", json.dumps(record).encode() + b"\n")
    (run,) = read_journal(tmp_path / "locks", SESSION)
    assert run.function == 7 and run.rerun_of == "ab" * 12


def test_lines_carry_where_the_run_ran(tmp_path: Path, lines: list[bytes]) -> None:
    record = json.loads(lines[0])
    # A run of Recorder.run: this process (the fixture's), the session's host (None), no sweep.
    assert record[14:] == [None, os.getpid(), None]
    record[14:] = ["worker-7.cluster", 4242, 5]
    write(tmp_path / "locks", json.dumps(record).encode() + b"\n")
    (run,) = read_journal(tmp_path / "locks", SESSION)
    assert (run.host, run.pid, run.pset_seq) == ("worker-7.cluster", 4242, 5)


def test_lines_of_fourteen_items_written_before_schema_7_still_replay(tmp_path: Path, lines: list[bytes]) -> None:
    old = [json.dumps(json.loads(line)[:14]).encode() + b"\n" for line in lines]
    write(tmp_path / "locks", *old)
    runs = read_journal(tmp_path / "locks", SESSION)
    assert [json.loads(run.canonical)["i"] for run in runs] == [0, 1, 2]
    # Unknown, not this process's: the replaying process did not run them.
    assert all(run.host is None and run.pid is None and run.pset_seq is None for run in runs)


def test_lines_of_twelve_items_written_before_schema_5_still_replay(tmp_path: Path, lines: list[bytes]) -> None:
    old = [json.dumps(json.loads(line)[:12]).encode() + b"\n" for line in lines]
    write(tmp_path / "locks", *old)
    runs = read_journal(tmp_path / "locks", SESSION)
    assert [json.loads(run.canonical)["i"] for run in runs] == [0, 1, 2]
    assert all(run.function is None and run.rerun_of is None for run in runs)
    assert all(run.host is None and run.pid is None and run.pset_seq is None for run in runs)


def altered(index: int, value: object) -> Callable[[list], None]:
    def alter(record: list) -> None:
        record[index] = value

    return alter


def params(text: str) -> Callable[[list], None]:
    """Parameters changed, with the hash that goes with them (so that only the parameters are wrong)."""

    def alter(record: list) -> None:
        record[2], record[1] = text, pset_hash(text)

    return alter


def result(name: str, index: int, value: object) -> Callable[[list], None]:
    def alter(record: list) -> None:
        for item in record[9]:
            if item[0] == name:
                item[index] = value

    return alter


def twice(record: list) -> None:
    record[9].append(list(record[9][0]))


def output(digest: str, text: str) -> Callable[[list], None]:
    return altered(11, [digest, text])


def object_row(record: list) -> None:
    for item in record[9]:
        if item[1] == "object":
            item[3][0] = "0" * 64  # names another array than the result


BAD: dict[str, tuple[Callable[[list], None], str]] = {
    "id not hex": (altered(0, "zz-not-hex"), "run id 'zz-not-hex'"),
    "id in capitals": (lambda r: r.__setitem__(0, r[0].upper()), "is not 24 lower-case hex digits"),
    "id too short": (altered(0, "abc"), "run id 'abc'"),
    "id a number": (altered(0, 12), "run id 12"),
    "hash of other parameters": (altered(1, "0" * 20), "is not the hash of its parameters"),
    "parameters not canonical": (params('{"i": 1}'), "not canonical JSON"),
    "parameter name with NUL": (params('{"a\\u0000":1}'), "control character"),
    "parameter name reserved": (params('{"status":1}'), "status"),
    "parameters not an object": (params("[1,2]"), "not a JSON object"),
    "parameters not JSON": (params("{"), "Expecting"),
    "seed a bool": (altered(3, True), "seed True"),
    "seed too large": (altered(3, 2**40), "31-bit"),
    "start time NaN": (altered(4, float("nan")), "start time nan"),
    "start time text": (altered(4, "now"), "start time 'now'"),
    "status still running": (altered(5, "running"), "status 'running'"),
    "status unknown": (altered(5, "bogus"), "status 'bogus'"),
    "duration negative": (altered(6, -1.0), "negative"),
    "error not text": (altered(7, 5), "error 5"),
    "comment a lone surrogate": (altered(8, "\ud800"), "comment"),
    "results not a list": (altered(9, {"y": 1}), "results"),
    "result name with NUL": (result("y", 0, "y\0"), "control character"),
    "result name reserved": (result("y", 0, "status"), "status"),
    "result name with underscore": (result("y", 0, "_y"), "starts with '_'"),
    "result named as a parameter": (result("y", 0, "I"), "already used"),
    "result twice": (twice, "already used"),
    "result kind unknown": (result("y", 1, "pickle"), "unknown kind 'pickle'"),
    "result kind not text": (result("y", 1, 3), "not a value of kind 3"),
    "result value of another kind": (result("y", 2, {"a": 1}), "is not a value of kind None"),
    "result NaN without its kind": (result("y", 2, float("nan")), "kind None"),
    "result int beyond 64 bits": (result("y", 2, 2**70), "kind None"),
    "result bool not 0 or 1": (result("flag", 2, 2), "kind 'bool'"),
    "result big int not digits": (result("big", 2, "1e3"), "kind 'int'"),
    "result bytes not base64": (result("b", 2, {"b": "!!"}), "not valid base64"),
    "result bytes not a cell": (result("b", 2, "AAA="), "not a base64 cell"),
    "result npy not npy": (result("small", 2, {"b": base64.b64encode(b"abc").decode()}), "kind 'npy'"),
    "result json not JSON": (result("nested", 2, "{"), "not JSON"),
    "result numpy kind odd": (result("f32", 1, "np:object"), "unknown kind"),
    "result digest out of the store": (result("large", 2, "../../etc/passwd"), "not an object digest"),
    "result digest in capitals": (result("large", 2, "A" * 64), "not an object digest"),
    "result object row of another array": (object_row, "does not describe"),
    "result object row on a number": (result("y", 3, ["0" * 64, 1, "<f8", "[]"]), "names an object"),
    "result object row missing": (result("large", 3, None), "names no object row"),
    "result comment on no result": (altered(10, {"nope": "x"}), "not comments on its results"),
    "result comment not text": (altered(10, {"z": 1}), "comment on 'z' 1"),
    "output digest of another text": (output(hashlib.sha256(b"other").hexdigest(), "text"), "not the digest"),
    "output digest out of the store": (output("../x", "text"), "not an object digest"),
    "sixteen items": (lambda r: r.pop(), "not a list of 17 items"),
    "fifteen items": (lambda r: r.__delitem__(slice(15, None)), "not a list of 17 items"),
    "thirteen items": (lambda r: r.__delitem__(slice(13, None)), "not a list of 17 items"),
    "eleven items": (lambda r: r.__delitem__(slice(11, None)), "not a list of 17 items"),
    "eighteen items": (lambda r: r.append(None), "not a list of 17 items"),
    "function a bool": (altered(12, True), "function True"),
    "function zero": (altered(12, 0), "function 0"),
    "function negative": (altered(12, -3), "function -3"),
    "function text": (altered(12, "1"), "function '1'"),
    "function beyond 64 bits": (altered(12, 2**70), "is not a row key"),
    "rerun_of not hex": (altered(13, "../../etc/passwd"), "rerun_of '../../etc/passwd'"),
    "rerun_of in capitals": (altered(13, "A" * 24), "24 lower-case hex digits"),
    "rerun_of a number": (altered(13, 12), "rerun_of 12"),
    "host empty": (altered(14, ""), "host ''"),
    "host a number": (altered(14, 5), "host 5"),
    "host with a newline": (altered(14, "a\nb"), "is not a host name"),
    "host with an escape": (altered(14, "\x1b[2Jhost"), "is not a host name"),
    "host too long": (altered(14, "h" * 256), "is not a host name"),
    "host a lone surrogate": (altered(14, "\ud800"), "is not a host name"),
    "pid zero": (altered(15, 0), "pid 0"),
    "pid negative": (altered(15, -5), "pid -5"),
    "pid a bool": (altered(15, True), "pid True"),
    "pid text": (altered(15, "12"), "pid '12'"),
    "pid beyond 32 bits": (altered(15, 2**32), "is not a process id"),
    "pset_seq negative": (altered(16, -1), "pset_seq -1"),
    "pset_seq a float": (altered(16, 1.0), "pset_seq 1.0"),
    "pset_seq beyond 64 bits": (altered(16, 2**63), "is not a position"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_line_is_skipped_and_reported_the_others_kept(tmp_path: Path, lines: list[bytes], case: str) -> None:
    alter, message = BAD[case]
    record = json.loads(lines[1])
    alter(record)
    bad = json.dumps(record).encode()
    path = write(tmp_path / "locks", lines[0] + b"\n", bad + b"\n", lines[2] + b"\n")
    with pytest.warns(RecorderWarning) as caught:
        runs = read_journal(tmp_path / "locks", SESSION)
    assert [json.loads(run.canonical)["i"] for run in runs] == [0, 2]
    (warning,) = [str(w.message) for w in caught]
    assert f"line 2 of the journal {path}" in warning and message in warning, warning


GARBAGE = {
    "binary": b"\xff\xfe\x00garbage",
    "text": b"not json at all",
    "empty": b"",  # an empty line: never written
    "object": b"{}",
    "null": b"null",
    "deep": b"[" * 100_000 + b"]" * 100_000,  # nested beyond the parser's depth
    "carriage returns": b"\r\r",
}


@pytest.mark.parametrize("garbage", list(GARBAGE.values()), ids=list(GARBAGE))
def test_garbage_is_skipped_and_reported(tmp_path: Path, lines: list[bytes], garbage: bytes) -> None:
    path = write(tmp_path / "locks", lines[0] + b"\n", garbage + b"\n", lines[1] + b"\n")
    with pytest.warns(RecorderWarning, match=re.escape(f"line 2 of the journal {path}")):
        runs = read_journal(tmp_path / "locks", SESSION)
    assert len(runs) == 2


def test_a_line_cut_short_by_a_crash_is_ignored_quietly(
    tmp_path: Path, lines: list[bytes], recwarn: pytest.WarningsRecorder
) -> None:
    write(tmp_path / "locks", lines[0] + b"\n", lines[1] + b"\n", lines[2][: len(lines[2]) // 2])
    runs = read_journal(tmp_path / "locks", SESSION)
    assert len(runs) == 2
    assert not [w for w in recwarn if issubclass(w.category, RecorderWarning)]


def test_a_run_journaled_twice_is_read_once(tmp_path: Path, lines: list[bytes]) -> None:
    write(tmp_path / "locks", lines[0] + b"\n", lines[1] + b"\n")
    second = write(tmp_path / "locks", lines[1] + b"\n", lines[2] + b"\n", number=1)
    with pytest.warns(RecorderWarning, match=re.escape(f"line 1 of the journal {second}: run")):
        runs = read_journal(tmp_path / "locks", SESSION)
    assert [json.loads(run.canonical)["i"] for run in runs] == [0, 1, 2]


def test_a_journal_of_another_sessions_name_is_not_read(tmp_path: Path, lines: list[bytes]) -> None:
    write(tmp_path / "locks", lines[0] + b"\n")
    shutil.copy(tmp_path / "locks" / f"{SESSION}.journal.0", tmp_path / "locks" / f"{'1' * 24}.journal.0")
    assert len(read_journal(tmp_path / "locks", "1" * 24)) == 1
    assert len(read_journal(tmp_path / "locks", "2" * 24)) == 0


def test_lines_across_pieces_and_zeros_between_them_are_read_as_written(tmp_path: Path, lines: list[bytes]) -> None:
    """The file is read a piece at a time: a line spanning pieces comes back whole, zeros stay a bad line."""
    from recorder.store.journal import _READ_BYTES

    record = json.loads(lines[0])
    record[9], record[10] = [["s", None, "x" * (3 * _READ_BYTES + 17), None]], None  # a line over four pieces
    long = json.dumps(record, separators=(",", ":")).encode()
    folder = tmp_path / "locks"
    # A whole piece of zeros between lines (a hole): the line holding it is skipped, the next one kept.
    path = write(folder, long + b"\n", b"\0" * (2 * _READ_BYTES) + b"junk\n", lines[1] + b"\n")
    with pytest.warns(RecorderWarning, match=re.escape(f"line 2 of the journal {path}")):
        runs = read_journal(folder, SESSION)
    assert [len(run.results["s"].value) for run in runs[:1]] == [3 * _READ_BYTES + 17]
    assert [json.loads(run.canonical)["i"] for run in runs] == [0, 1]


def test_a_file_set_aside_is_never_read_again(tmp_path: Path, lines: list[bytes]) -> None:
    path = write(tmp_path / "locks", lines[0] + b"\n")
    path.rename(path.with_name(f"{path.name}.bad"))
    assert read_journal(tmp_path / "locks", SESSION) == []
