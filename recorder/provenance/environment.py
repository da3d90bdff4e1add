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
from typing import Any, NamedTuple

__all__ = [
    "Environment",
    "FunctionIdentity",
    "ProcessInfo",
    "RECORDED_FUNCTION",
    "RERUN_SCRIPT_MODULE",
    "environment",
    "function_identity",
    "process_info",
    "jax_info",
    "main_script",
]

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


class FunctionIdentity(NamedTuple):
    """How a rerun finds an experiment function again (a row of the ``functions`` table).

    ``how`` is ``"import"``: import ``module`` and take ``qualname`` from it;
    or ``"script"``: the function was defined in the main script ``path``
    (``__main__``), or cannot be imported by name at all (``qualname`` holds
    ``<locals>`` or ``<lambda>``: a rerun refuses it). ``path`` is the file
    relative to the repository root; absolute when there is no repository
    or the file is outside it; None when there is no file (a notebook, ``-c``).
    """

    module: str
    qualname: str
    path: str | None
    how: str


#: The module name a rerun loads a main script under (see :mod:`recorder.record.rerun`): so that its
#: ``if __name__ == "__main__":`` block does not run. Its functions are recorded as the script's.
RERUN_SCRIPT_MODULE = "__recorder_rerun__"

#: The attribute by which a wrapper of an experiment function (an ``Experiment``, a pool's body) names the
#: function it calls: looked through, so that the function itself is recorded.
RECORDED_FUNCTION = "__recorder_function__"


def function_identity(func: Any, repo_root: str | os.PathLike[str] | None) -> FunctionIdentity:
    """Return how a rerun finds ``func`` again: its module, qualified name, file and how to load it.

    A wrapper is looked through by its :data:`RECORDED_FUNCTION` attribute.
    Reads no file: only the module's ``__file__`` and the main script's path.
    """
    for _ in range(8):  # a wrapper of a wrapper at most, in practice
        inner = getattr(func, RECORDED_FUNCTION, None)
        if inner is None:
            break
        func = inner
    module = str(getattr(func, "__module__", None) or "__main__")
    qualname = str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or type(func).__qualname__)
    if module == RERUN_SCRIPT_MODULE:  # a script loaded by a rerun: the script it is
        file = getattr(sys.modules.get(module), "__file__", None)
        return FunctionIdentity(
            "__main__", qualname, _relative(Path(file).resolve() if file else None, repo_root), "script"
        )
    importable = module != "__main__" and "<" not in qualname
    if importable:
        file = getattr(sys.modules.get(module), "__file__", None)
        path = Path(file).resolve() if file else None
    else:
        path = main_script()
    return FunctionIdentity(module, qualname, _relative(path, repo_root), "import" if importable else "script")


def _relative(path: Path | None, repo_root: str | os.PathLike[str] | None) -> str | None:
    """``path`` relative to the repository root (POSIX separators), else absolute; None stays None."""
    if path is None:
        return None
    if repo_root is not None:
        try:
            return path.relative_to(Path(repo_root).resolve()).as_posix()
        except ValueError:
            pass  # outside the repository (an installed package): absolute
    return str(path)
