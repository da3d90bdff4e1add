"""Fault injection: every test in this folder is marked ``faults`` (run alone with ``-m faults``).

Each test is deterministic and bounded in time: processes are killed at
points the test chooses (markers fsync'd by the run say what finished),
and every wait has a timeout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.faults)
