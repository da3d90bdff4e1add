"""The content-addressed object store, used directly: files, digests, dedup, atomic writes."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT

import recorder as rec
from recorder.codec.npy import load_npy_bytes, npy_bytes
from recorder.errors import ObjectOutsideStore
from recorder.store.objects import validate_digest

# -- helpers --------------------------------------------------------------------------


def saved(array: np.ndarray) -> bytes:
    """What ``numpy.save`` writes for ``array``."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def temp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.startswith(".tmp-"))


@pytest.fixture
def objects(tmp_path: Path) -> rec.ObjectStore:
    return rec.ObjectStore(tmp_path / "store" / "objects")


C_ARRAYS = [
    pytest.param(np.arange(1000, dtype=np.float64), id="float64"),
    pytest.param(np.arange(24, dtype=np.int32).reshape(2, 3, 4), id="int32-3d"),
    pytest.param(np.array(2.5), id="0-d"),
    pytest.param(np.zeros((0, 5)), id="empty"),
    pytest.param(np.arange(7, dtype=">f4"), id="big-endian"),
    pytest.param(np.array([True, False, True]), id="bool"),
    pytest.param(np.array([1 + 1j, np.nan]), id="complex"),
    pytest.param(np.array(["ab", "✓"]), id="str"),
    pytest.param(np.array([b"ab", b""]), id="bytes"),
    pytest.param(np.zeros(3, dtype=[("a", "<i2"), ("b", ">f8"), ("c", "S3")]), id="structured"),
    pytest.param(np.array(["2021-01-01", "NaT"], dtype="datetime64[ms]"), id="datetime"),
    pytest.param(np.full((64, 1024), -0.0), id="512KB"),
]


# -- put --------------------------------------------------------------------------------


@pytest.mark.parametrize("array", C_ARRAYS)
def test_put_writes_the_numpy_save_bytes_named_by_their_sha256(objects: rec.ObjectStore, array: np.ndarray) -> None:
    assert array.flags.c_contiguous
    assert not objects.root.exists()  # created on the first put, not before
    digest, size = objects.put(array)
    expected = saved(array)
    assert digest == hashlib.sha256(expected).hexdigest()
    assert size == len(expected)
    path = objects.path(digest)
    assert path == objects.root / digest[:2] / f"{digest[2:]}.npy"
    assert files_under(objects.root) == [path]
    assert path.read_bytes() == expected
    assert path.stat().st_size == size
    assert npy_bytes(array) == expected
    assert objects.exists(digest) and objects.verify(digest)


@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.asfortranarray(np.arange(12.0).reshape(3, 4)), id="fortran"),
        pytest.param(np.arange(40).reshape(5, 8)[1::2, ::3], id="strided"),
        pytest.param(np.arange(10.0)[::-1], id="reversed"),
        pytest.param(np.broadcast_to(np.arange(3), (4, 3)), id="broadcast"),
    ],
)
def test_put_stores_other_layouts_in_canonical_c_order(objects: rec.ObjectStore, array: np.ndarray) -> None:
    assert not array.flags.c_contiguous
    digest, size = objects.put(array)
    expected = saved(np.ascontiguousarray(array))
    assert objects.path(digest).read_bytes() == expected
    assert (digest, size) == (hashlib.sha256(expected).hexdigest(), len(expected))
    # Same content, same object.
    assert objects.put(np.ascontiguousarray(array)) == (digest, size)
    back = objects.get(digest)
    assert back.flags.c_contiguous
    np.testing.assert_array_equal(back, array)


def test_put_accepts_array_likes(objects: rec.ObjectStore) -> None:
    digest, _ = objects.put([[1, 2], [3, 4]])
    assert digest == objects.put(np.array([[1, 2], [3, 4]]))[0]


def test_path_layout(objects: rec.ObjectStore) -> None:
    digest = "ab" + "cdef" * 15 + "01"
    assert len(digest) == 64
    path = objects.path(digest)
    assert path.relative_to(objects.root).parts == ("ab", "cdef" * 15 + "01.npy")
    assert not path.exists() and not objects.exists(digest)


def test_different_arrays_get_different_objects(objects: rec.ObjectStore) -> None:
    a = np.zeros(4, dtype=np.float64)
    digests = {
        objects.put(a)[0],
        objects.put(a.astype(np.float32))[0],  # dtype differs
        objects.put(a.reshape(2, 2))[0],  # shape differs
        objects.put(a.astype(">f8"))[0],  # byte order differs
        objects.put(np.full(4, -0.0))[0],  # -0.0 is not 0.0 bit for bit
    }
    assert len(digests) == 5
    assert len(files_under(objects.root)) == 5


def test_second_put_of_an_equal_array_does_not_rewrite(objects: rec.ObjectStore) -> None:
    array = np.random.default_rng(0).random((200, 300))
    digest, size = objects.put(array)
    path = objects.path(digest)
    old = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(old, old))
    before = path.stat()
    assert objects.put(array.copy()) == (digest, size)
    assert objects.put(np.asfortranarray(array)) == (digest, size)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, old, before.st_size)
    assert files_under(objects.root) == [path]


def test_object_arrays_are_refused_and_nothing_is_written(objects: rec.ObjectStore) -> None:
    for array in (np.array([1, "a"], dtype=object), np.array([None]), np.zeros(2, dtype=[("o", "O")])):
        with pytest.raises(rec.ObjectError, match=r"object|Python objects"):
            objects.put(array)
    assert not objects.root.exists()


def test_structured_array_with_non_latin1_field_names(objects: rec.ObjectStore) -> None:
    array = np.zeros(3, dtype=[("温度", "<f8"), ("ok", "<i4")])
    try:
        digest, _ = objects.put(array)
    except rec.ObjectError:
        return  # a clear refusal would be acceptable too
    back = objects.get(digest, mmap=False)
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


# -- get --------------------------------------------------------------------------------------


def test_get_mmap_is_a_read_only_memmap(objects: rec.ObjectStore) -> None:
    array = np.arange(10_000, dtype=np.int64).reshape(100, 100)
    digest, _ = objects.put(array)
    back = objects.get(digest)
    assert isinstance(back, np.memmap)
    assert not back.flags.writeable
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    with pytest.raises(ValueError):
        back[0, 0] = 1
    assert objects.verify(digest)  # the file is untouched


def test_get_without_mmap_is_a_plain_writable_array(objects: rec.ObjectStore) -> None:
    array = np.linspace(0, 1, 50)
    digest, _ = objects.put(array)
    back = objects.get(digest, mmap=False)
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, array)
    back[0] = 42.0  # a private copy: the stored object is unchanged
    assert objects.verify(digest)
    assert objects.get(digest, mmap=False)[0] == 0.0


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.zeros((0,)), id="empty-1d"),
        pytest.param(np.zeros((3, 0), dtype=np.int16), id="empty-2d"),
        pytest.param(np.array([], dtype="U4"), id="empty-str"),
        pytest.param(np.array(-1.5), id="0-d"),
    ],
)
def test_get_empty_and_0d_arrays(objects: rec.ObjectStore, array: np.ndarray, mmap: bool) -> None:
    digest, _ = objects.put(array)
    back = objects.get(digest, mmap=mmap)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_get_of_a_missing_digest_names_it(objects: rec.ObjectStore) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    for mmap in (True, False):
        with pytest.raises(rec.ObjectError, match=digest):
            objects.get(digest, mmap=mmap)
    assert not objects.exists(digest)
    assert not objects.verify(digest)


@pytest.mark.parametrize("mmap", [True, False])
def test_get_of_a_truncated_file_is_an_object_error(objects: rec.ObjectStore, mmap: bool) -> None:
    digest, size = objects.put(np.arange(1000.0))
    path = objects.path(digest)
    path.write_bytes(path.read_bytes()[: size // 2])
    with pytest.raises(rec.ObjectError, match=digest):
        objects.get(digest, mmap=mmap)


class _Trap:
    """Unpickling this creates a file: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("mmap", [True, False])
def test_get_never_unpickles(objects: rec.ObjectStore, tmp_path: Path, mmap: bool) -> None:
    marker = tmp_path / "unpickled"
    buffer = io.BytesIO()
    np.save(buffer, np.array([_Trap(marker)], dtype=object), allow_pickle=True)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = objects.path(digest)
    path.parent.mkdir(parents=True)
    path.write_bytes(data)  # a hostile file under a valid object name
    assert objects.verify(digest)
    with pytest.raises(rec.ObjectError, match=digest):
        objects.get(digest, mmap=mmap)
    with pytest.raises(ValueError):
        load_npy_bytes(data)
    assert not marker.exists()


# -- digests --------------------------------------------------------------------------------


GOOD = hashlib.sha256(b"x").hexdigest()

BAD_DIGESTS = [
    pytest.param(GOOD.upper(), id="uppercase"),
    pytest.param(GOOD[:63], id="63-chars"),
    pytest.param(GOOD + "0", id="65-chars"),
    pytest.param("", id="empty"),
    pytest.param(GOOD[:-1] + "g", id="non-hex"),
    pytest.param(GOOD + "\n", id="trailing-newline"),
    pytest.param(" " + GOOD[1:], id="leading-space"),
    pytest.param("../" + GOOD[3:], id="dot-dot-slash"),
    pytest.param("ab/../../" + GOOD[9:], id="embedded-dot-dot"),
    pytest.param("/" + GOOD[1:], id="absolute"),
    pytest.param(GOOD[:32] + "/" + GOOD[33:], id="slash"),
    pytest.param(GOOD[:10] + "\x00" + GOOD[11:], id="nul"),
    pytest.param(None, id="None"),
    pytest.param(GOOD.encode(), id="bytes"),
    pytest.param(int(GOOD, 16), id="int"),
    pytest.param(Path(GOOD), id="Path"),
    pytest.param([GOOD], id="list"),
]


def test_validate_digest_accepts_64_lowercase_hex() -> None:
    assert validate_digest(GOOD) == GOOD
    assert validate_digest("0" * 64) == "0" * 64


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_bad_digests_are_refused_before_touching_the_file_system(tmp_path: Path, digest: Any) -> None:
    root = tmp_path / "missing" / "objects"
    objects = rec.ObjectStore(root)
    with pytest.raises(rec.ObjectError, match="not an object digest"):
        validate_digest(digest)
    for call in (objects.path, objects.get, objects.exists, objects.verify):
        with pytest.raises(rec.ObjectError, match="not an object digest"):
            call(digest)
    with pytest.raises(rec.ObjectError):
        objects.get(digest, mmap=False)
    assert not (tmp_path / "missing").exists()


def test_path_traversal_cannot_reach_a_file_outside_objects(tmp_path: Path, objects: rec.ObjectStore) -> None:
    outside = tmp_path / "outside"
    np.save(outside.with_suffix(".npy"), np.arange(3))
    objects.put(np.arange(1))  # objects/ exists
    # Without validation, root / ".." / "/…/outside.npy" would be the absolute path of that file.
    sneaky = ".." + str(outside)
    assert (objects.root / sneaky[:2] / f"{sneaky[2:]}.npy").exists()
    for call in (objects.get, objects.exists, objects.verify):
        with pytest.raises(rec.ObjectError):
            call(sneaky)


def test_uppercase_digest_of_a_stored_object_is_refused(objects: rec.ObjectStore) -> None:
    digest, _ = objects.put(np.arange(5))
    with pytest.raises(rec.ObjectError):
        objects.get(digest.upper())
    with pytest.raises(rec.ObjectError):
        objects.verify(digest.upper())


# -- verify -------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["header", "data", "last"])
def test_verify_detects_a_flipped_byte(objects: rec.ObjectStore, where: str) -> None:
    digest, size = objects.put(np.arange(500, dtype=np.int32))
    other, _ = objects.put(np.arange(3))
    path = objects.path(digest)
    data = bytearray(path.read_bytes())
    offset = {"header": 20, "data": size // 2, "last": size - 1}[where]
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    assert objects.exists(digest)
    assert not objects.verify(digest)
    assert objects.verify(other)


def test_verify_detects_missing_and_truncated_files(objects: rec.ObjectStore) -> None:
    digest, _ = objects.put(np.arange(100))
    path = objects.path(digest)
    path.write_bytes(path.read_bytes()[:-1])
    assert not objects.verify(digest)
    path.unlink()
    assert not objects.verify(digest)
    assert not objects.exists(digest)


# -- atomic writes ---------------------------------------------------------------------------------

_PUT_IN_A_PROCESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    import recorder as rec

    root, go = Path(sys.argv[1]), Path(sys.argv[2])
    array = np.arange(2_000_000, dtype=np.float64).reshape(1000, 2000)  # 16 MB
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("no go")
        time.sleep(0.001)
    print(*rec.ObjectStore(root).put(array))
    """
)


def test_concurrent_puts_from_four_processes(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    go = tmp_path / "go"
    script = tmp_path / "put.py"
    script.write_text(_PUT_IN_A_PROCESS)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    time.sleep(0.5)  # let them import and build the array
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    answers = {out.split()[0] for out, _ in outputs}
    assert len(answers) == 1
    (digest,) = answers
    expected = saved(np.arange(2_000_000, dtype=np.float64).reshape(1000, 2000))
    assert digest == hashlib.sha256(expected).hexdigest()
    objects = rec.ObjectStore(root)
    assert files_under(root) == [objects.path(digest)]
    assert temp_files(root) == []
    assert objects.path(digest).read_bytes() == expected


def test_leftover_temp_file_never_appears_under_the_final_name(objects: rec.ObjectStore) -> None:
    array = np.arange(5000, dtype=np.float64)
    expected = saved(array)
    digest = hashlib.sha256(expected).hexdigest()
    final = objects.path(digest)
    # A writer killed half way leaves a partial temp file in the object's folder.
    final.parent.mkdir(parents=True)
    leftover = final.parent / f".tmp-{digest[2:10]}-99999-deadbeef"
    leftover.write_bytes(expected[: len(expected) // 2])
    assert not final.exists()
    assert not objects.exists(digest) and not objects.verify(digest)
    with pytest.raises(rec.ObjectError, match=digest):
        objects.get(digest)
    # A new put writes a complete file under the final name; the leftover is not it.
    assert objects.put(array) == (digest, len(expected))
    assert final.read_bytes() == expected
    assert objects.verify(digest)
    assert leftover.read_bytes() == expected[: len(expected) // 2]
    assert temp_files(objects.root) == [leftover]
    assert all(p.name.startswith(".tmp-") or p == final for p in files_under(objects.root))


def test_successful_puts_leave_no_temp_files(objects: rec.ObjectStore) -> None:
    for n in range(20):
        objects.put(np.arange(n * 100))
    files = files_under(objects.root)
    assert len(files) == 20
    assert temp_files(objects.root) == []
    assert all(f.suffix == ".npy" and len(f.parent.name + f.stem) == 64 for f in files)


_PUT_WITH_A_FILE_SIZE_LIMIT = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    import numpy as np
    import recorder as rec

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    objects = rec.ObjectStore(Path(sys.argv[1]))
    try:
        objects.put(np.arange(1_000_000, dtype=np.float64))  # 8 MB: the write fails half way
    except rec.ObjectError as e:
        print("refused:", e)
    else:
        sys.exit("put succeeded past the file size limit")
    print(*objects.put(np.arange(10)))  # a small one still works
    """
)


def test_a_failed_write_leaves_neither_a_final_nor_a_temp_file(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    script = tmp_path / "put.py"
    script.write_text(_PUT_WITH_A_FILE_SIZE_LIMIT)
    done = subprocess.run(
        [sys.executable, str(script), str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    refused, small = done.stdout.splitlines()
    big_digest = hashlib.sha256(saved(np.arange(1_000_000, dtype=np.float64))).hexdigest()
    assert refused.startswith("refused: cannot write object " + big_digest)
    objects = rec.ObjectStore(root)
    assert not objects.exists(big_digest)
    assert temp_files(root) == []
    digest, _size = small.split()
    assert files_under(root) == [objects.path(digest)]
    assert objects.verify(digest)


# -- symbolic links: never followed out of the store -------------------------------------


def _digest_of(array: np.ndarray, tmp_path: Path) -> str:
    return rec.ObjectStore(tmp_path / "scratch" / "objects").put(array)[0]


def test_put_refuses_a_fan_out_folder_that_is_a_link_out_of_the_store(objects: rec.ObjectStore, tmp_path: Path) -> None:
    array = np.arange(50_000.0)
    digest = _digest_of(array, tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    objects.root.mkdir(parents=True)
    (objects.root / digest[:2]).symlink_to(victim)
    with pytest.raises(ObjectOutsideStore, match="symbolic link"):
        objects.put(array)
    assert list(victim.iterdir()) == []
    for call in (objects.get, objects.verify, objects.exists):
        with pytest.raises(ObjectOutsideStore):
            call(digest)


def test_objects_folder_that_is_a_link_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "objects").symlink_to(victim)
    objects = rec.ObjectStore(tmp_path / "store" / "objects")
    with pytest.raises(ObjectOutsideStore, match="objects"):
        objects.put(np.arange(50_000.0))
    assert list(victim.iterdir()) == []


def test_an_object_file_that_is_a_link_is_not_read_through(objects: rec.ObjectStore, tmp_path: Path) -> None:
    array = np.arange(50_000.0)
    digest, _ = objects.put(array)
    path = objects.path(digest)
    outside = tmp_path / "outside.npy"
    outside.write_bytes(path.read_bytes())  # the right bytes, reached the wrong way
    path.unlink()
    path.symlink_to(outside)
    for call in (objects.get, objects.verify, objects.exists):
        with pytest.raises(ObjectOutsideStore, match=digest):
            call(digest)
    # put replaces the link with a real file; the file it pointed to is untouched
    assert objects.put(array) == (digest, outside.stat().st_size)
    assert not path.is_symlink() and objects.verify(digest) and outside.exists()
