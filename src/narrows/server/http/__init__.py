"""HTTP/1.1 for the narrows server: sans-I/O parser, response writer, ASGI cycle, protocol.

``setup.py`` compiles the per-request modules with mypyc where it can (``COMPILED`` there)
and records their sources' digests beside them (``_compiled_cpython_311.py``). Python
imports a compiled module in preference to its source, so if a source no longer matches its
digest (an editable install edited or updated since its build) this package imports every
compiled module from source instead, and warns: stale C never runs in place of the source.
``NARROWS_PURE_PYTHON=1`` in the environment asks for the sources outright (a profiler or a
debugger then sees narrows' Python frames).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

__all__ = ["compiled"]

_HERE = Path(__file__).resolve().parent


class _SourcesFirst:
    """A meta path finder that loads the named modules from their ``.py`` files."""

    def __init__(self, names: Sequence[str]) -> None:
        self._files = {f"{__name__}.{name}": _HERE / f"{name}.py" for name in names}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        file = self._files.get(fullname)
        return None if file is None else importlib.util.spec_from_file_location(fullname, file)


def _stale_sources(recorded: dict[str, str]) -> list[str]:
    stale = []
    for name, digest in recorded.items():
        try:
            actual = hashlib.sha256((_HERE / f"{name}.py").read_bytes()).hexdigest()
        except OSError:
            continue  # no source beside it (an install without .py files): nothing to prefer
        if actual != digest:
            stale.append(name)
    return stale


def _choose_form() -> None:
    try:  # written by the build only when it compiled (so not known to the type checker)
        tag = sys.implementation.cache_tag.replace("-", "_")
        record = importlib.import_module(f"{__name__}._compiled_{tag}")
    except ImportError:
        return  # installed as pure Python
    recorded: dict[str, str] = record.SOURCES
    if os.environ.get("NARROWS_PURE_PYTHON") == "1":  # asked for: profilers, tracebacks
        sys.meta_path.insert(0, _SourcesFirst(list(recorded)))
        return
    stale = _stale_sources(recorded)
    if stale:
        warnings.warn(
            f"narrows: {', '.join(f'{name}.py' for name in stale)} changed since the HTTP core "
            "was compiled; running it from source (slower). Reinstall narrows "
            "(pip install -e ., or ./scripts/_venv) to compile it again.",
            RuntimeWarning,
            stacklevel=2,
        )
        sys.meta_path.insert(0, _SourcesFirst(list(recorded)))


def compiled() -> bool:
    """Whether the HTTP core runs as mypyc-compiled code (else as Python source)."""
    from narrows.server.http import protocol

    return not (protocol.__file__ or "").endswith(".py")


_choose_form()
