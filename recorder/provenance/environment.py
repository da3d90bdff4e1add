"""Environment capture: host, Python, packages, platform, argv, script, JAX devices.

What does not change within a process (host, Python, installed packages,
their fingerprint) is captured once per process and cached; what may change
(argv, working folder, the script's source, JAX state) is read per session.
JAX is described only when the program has imported it already: recorder
never imports jax just to look.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import os
import platform
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Environment", "ProcessInfo", "environment", "process_info", "jax_info", "main_script"]

#: Scripts larger than this are not stored (a generated file, not a program).
MAX_SCRIPT_BYTES = 4 * 1024 * 1024
_XLA_VARS = (
    "XLA_FLAGS",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",
    "XLA_PYTHON_CLIENT_ALLOCATOR",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "JAX_PLATFORMS",
    "JAX_ENABLE_X64",
    "CUDA_VISIBLE_DEVICES",
)


@dataclass(frozen=True)
class Environment:
    """The software environment of this process."""

    host: str
    user: str | None
    platform: str
    python: str
    #: JSON object of installed distribution name → version, sorted by name.
    packages: str
    #: SHA-256 (first 16 hex digits) of Python, platform and packages.
    fingerprint: str


@dataclass(frozen=True)
class ProcessInfo:
    """What this process is running now."""

    pid: int
    argv: str  # JSON list
    cwd: str
    script_path: str | None
    script: str | None  # the script's source


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers) and no $USER
        return None


def _packages() -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name not in found:  # first on sys.path wins, as for imports
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    """Return this process's environment (captured once, then cached)."""
    python = f"{platform.python_implementation()} {platform.python_version()}"
    plat = platform.platform()
    packages = json.dumps(_packages(), separators=(",", ":"))
    fingerprint = hashlib.sha256(f"{python}\n{plat}\n{packages}".encode()).hexdigest()[:16]
    return Environment(
        host=socket.gethostname(),
        user=_user(),
        platform=plat,
        python=python,
        packages=packages,
        fingerprint=fingerprint,
    )


def main_script() -> Path | None:
    """Return the path of the ``__main__`` script, or None (interactive, ``-c``, notebooks)."""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    return path if path.is_file() else None


def process_info() -> ProcessInfo:
    """Return argv, working folder and the main script's source."""
    script_path = main_script()
    script = None
    if script_path is not None and script_path.stat().st_size <= MAX_SCRIPT_BYTES:
        try:
            script = script_path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            script = None  # unreadable (permissions): the path is still recorded
    return ProcessInfo(
        pid=os.getpid(),
        argv=json.dumps(sys.argv),
        cwd=os.getcwd(),
        script_path=str(script_path) if script_path else None,
        script=script,
    )


def jax_info() -> str | None:
    """Return JAX's versions, backend, devices and XLA settings as JSON, if jax is imported."""
    jax = sys.modules.get("jax")
    if jax is None:
        return None
    info: dict[str, Any] = {"jax": getattr(jax, "__version__", None)}
    jaxlib = sys.modules.get("jaxlib")
    info["jaxlib"] = getattr(jaxlib, "__version__", None)
    info["env"] = {name: os.environ[name] for name in _XLA_VARS if name in os.environ}
    try:
        devices = jax.devices()
        info["backend"] = jax.default_backend()
        info["device_count"] = len(devices)
        info["device_kinds"] = sorted({d.device_kind for d in devices})
        info["x64"] = bool(jax.config.jax_enable_x64)
    except Exception as e:  # a broken backend must not stop the recording; say what it said
        info["error"] = f"{type(e).__name__}: {e}"
    return json.dumps(info, sort_keys=True)
