"""Build narrows, compiling its HTTP core with mypyc where it can.

The modules in ``COMPILED`` are ordinary, fully typed Python. mypyc (mypy's compiler,
the one black and mypy ship with) turns them into C extensions that run the same source
with about a third fewer CPU instructions per request. They stay importable as Python:
``NARROWS_COMPILE=0`` at install time (the default on Python 3.12+, see
``wants_compiled``), a machine without a C compiler, or a compile that fails all give the
pure-Python package (with a warning for the last two), which behaves
the same, only slower. ``narrows --version`` says which one is installed.

After a successful compile the build records each source's SHA-256 beside the extensions
(``narrows/server/http/_compiled_cpython_311.py`` and so on, one per interpreter);
``narrows.server.http`` checks it on import, so an editable install whose sources changed
since its build runs the sources, not stale C.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
PACKAGE = "narrows/server/http"
#: The modules every HTTP request runs through, per request.
COMPILED = ["parser", "connection", "cycle", "protocol", "response", "scope", "date"]
#: mypyc puts the compiled code in one shared library, ``narrows_http__mypyc``.
GROUP = "narrows_http"
SOURCE_DIR = ROOT / "src" / PACKAGE
MODULE_PREFIX = PACKAGE.replace("/", ".") + "."


class OptionalBuildExt(build_ext):
    """Compile if possible; a failure leaves the pure-Python package, with a warning.

    mypyc runs only when extensions are built, not whenever setup.py is imported (pip
    imports it several times per install). An editable install whose extensions for this
    interpreter were compiled from the current sources reuses them: the venvs of one Python
    version share the files in ``src/``.
    """

    def run(self) -> None:
        if not self.extensions:
            return
        reusable = self.editable_mode and not self.force
        if reusable and _up_to_date(SOURCE_DIR / _record_name(), _inplace_files()):
            return
        record = Path(self.get_ext_fullpath(f"{MODULE_PREFIX}{COMPILED[0]}")).parent
        record /= _record_name()
        record.unlink(missing_ok=True)  # until this build succeeds
        try:
            self.distribution.ext_modules = _mypycify()
            # Finalized again, for the extensions mypyc made (the one option that does not
            # survive a second pass is swig_opts, a string turned into a list).
            self.swig_opts = None
            self.finalize_options()
            super().run()
        except (Exception, SystemExit) as exc:  # no compiler, headers or mypyc
            _warn(exc)
            for ext in self.extensions:
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            self.extensions = []
            return
        _record(record)


def _warn(exc: BaseException) -> None:
    print(
        f"warning: narrows' HTTP core was not compiled ({exc!r}); installing it as pure "
        "Python (the same behaviour, slower). Install a C compiler and the Python headers, "
        "or set NARROWS_COMPILE=0 to silence this.",
        file=sys.stderr,
    )


def _inplace_files() -> list[Path]:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    files = [SOURCE_DIR / f"{name}{suffix}" for name in COMPILED]
    return [*files, ROOT / "src" / f"{GROUP}__mypyc{suffix}"]


def _record_name() -> str:
    """One record per interpreter (cpython311...): their extensions are separate files."""
    return f"_compiled_{sys.implementation.cache_tag.replace('-', '_')}.py"


def _record(path: Path) -> None:
    """Write the digests of the sources just compiled next to their extensions."""
    lines = [
        '"""Written by setup.py after compiling: the SHA-256 of each compiled source."""',
        "",
        "SOURCES = {",
        *(f'    "{name}": "{digest}",' for name, digest in _digests().items()),
        "}",
    ]
    path.write_text("\n".join(lines) + "\n")


def _digests() -> dict[str, str]:
    files = {name: SOURCE_DIR / f"{name}.py" for name in COMPILED}
    return {name: hashlib.sha256(file.read_bytes()).hexdigest() for name, file in files.items()}


def _up_to_date(record: Path, extensions: list[Path]) -> bool:
    """The extensions exist and ``record`` says they were compiled from today's sources."""
    if not record.exists() or not all(path.exists() for path in extensions):
        return False
    recorded: dict[str, object] = {}
    exec(record.read_text(), recorded)
    return recorded.get("SOURCES") == _digests()


def _mypycify() -> list[Extension]:
    from mypyc.build import mypycify

    # The build environment may lack narrows' dependencies: their types are then Any
    # (./scripts/check type-checks the whole package strictly, with them installed).
    flags = ["--ignore-missing-imports", "--no-warn-unused-ignores", "--no-warn-return-any"]
    paths = [f"src/{PACKAGE}/{name}.py" for name in COMPILED]
    return list(mypycify([*flags, *paths], opt_level="3", group_name=GROUP))


def wants_compiled() -> bool:
    """``NARROWS_COMPILE``, by default 1 on Python 3.11 and 0 on 3.12+.

    On 3.12+ a compiled coroutine that is cancelled passes the CancelledError on with the
    three-argument ``throw()``, which those versions deprecate: every cancelled request
    would print a DeprecationWarning (mypyc issue #1214). ``NARROWS_COMPILE=1`` compiles
    there anyway. (scripts/_venv and tests/server/http/test_compiled.py apply this rule.)
    """
    default = "1" if sys.version_info < (3, 12) else "0"
    return os.environ.get("NARROWS_COMPILE", default) != "0"


def _placeholders() -> list[Extension]:
    """Extensions by name only, so that setuptools runs build_ext (which compiles them)."""
    if not wants_compiled():
        return []
    return [Extension(f"{MODULE_PREFIX}{name}", sources=[]) for name in COMPILED]


setup(ext_modules=_placeholders(), cmdclass={"build_ext": OptionalBuildExt})
