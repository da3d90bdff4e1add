"""The codec is the lowest layer: it imports recorder.errors and its own modules, nothing else of recorder."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import recorder.codec

CODEC = Path(recorder.codec.__file__).parent


def recorder_imports(path: Path) -> list[str]:
    """Every module of recorder a file imports, anywhere in it (inside functions and TYPE_CHECKING too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").split(".")[0] == "recorder":
                found.append(node.module or "")
            elif node.level == 1:
                found.append(f"recorder.codec.{node.module or ''}")
            elif node.level >= 2:
                found.append(f"recorder.{node.module or ''}")
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "recorder"]
    return found


def test_the_codec_imports_nothing_above_it() -> None:
    files = sorted(CODEC.glob("*.py"))
    assert {p.name for p in files} >= {"hashing.py", "values.py"}
    for path in files:
        for module in recorder_imports(path):
            assert module == "recorder.errors" or module.startswith("recorder.codec."), f"{path.name} imports {module}"


def test_the_object_store_is_an_array_store() -> None:
    """values types the object store it is handed by a protocol of its own, which the store's class meets."""
    from recorder.codec.values import ArrayStore
    from recorder.store.objects import ObjectStore

    def takes(objects: ArrayStore) -> ArrayStore:
        return objects

    store = ObjectStore("unused")
    assert takes(store) is store  # mypy (strict, in .ci/run) checks that an ObjectStore is an ArrayStore
    for name in ("put", "get"):  # and, at run time, that it has each method with the protocol's parameters
        wanted = inspect.signature(getattr(ArrayStore, name)).parameters
        assert list(inspect.signature(getattr(ObjectStore, name)).parameters) == list(wanted)
