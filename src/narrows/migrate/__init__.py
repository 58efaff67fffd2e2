"""``narrows migrate PATH...``: rename Channels, channels_redis and Daphne to narrows, safely.

Prints a unified diff of what would change; ``--write`` applies it. What changes, and
nothing else:

- Python: ``channels``/``channels_redis``/``daphne`` imports (and the uses of a name such an
  import binds), ``INSTALLED_APPS`` entries, ``CHANNEL_LAYERS`` ``BACKEND`` strings, module
  paths given to ``mock.patch()``/``pytest.importorskip()``/``import_module()``...;
  found with Python's own parser and tokenizer, never by searching text.
- ``daphne`` where a supervisor ``[program:x]`` ``command=``, a systemd ``Exec*=`` line, a
  Procfile or a Dockerfile ``CMD``/``ENTRYPOINT`` runs it.

What cannot be renamed mechanically (a Daphne module narrows has no counterpart for, a
file that also uses ``channels`` as a variable...) is listed as ``path:line: note``.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from narrows.migrate import commands
from narrows.migrate.imports import migrate_imports
from narrows.migrate.literals import migrate_literals
from narrows.migrate.source import Edit, Note, PythonSource

__all__ = ["FileResult", "main", "migrate_file", "migrate_text"]

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "site-packages",
        "build",
        "dist",
    }
)


@dataclass
class FileResult:
    path: Path
    old: str
    new: str
    notes: list[Note] = field(default_factory=list)
    encoding: str = "utf-8"

    @property
    def changed(self) -> bool:
        return self.old != self.new


def kind_of(path: Path) -> str | None:
    """Which rewriter reads ``path``: python, supervisor, systemd, procfile, dockerfile."""
    name = path.name
    if name.endswith(".py"):
        return "python"
    if name == "Procfile" or name.startswith("Procfile."):
        return "procfile"
    if name.endswith(".service"):
        return "systemd"
    if name in ("Dockerfile", "Containerfile") or name.startswith("Dockerfile."):
        return "dockerfile"
    if name.endswith(".Dockerfile"):
        return "dockerfile"
    if name.endswith((".conf", ".ini")):
        return "supervisor"
    return None


def _apply(text: str, edits: list[Edit]) -> str:
    pieces, position = [], 0
    for edit in sorted(set(edits)):
        pieces.append(text[position : edit.start])
        pieces.append(edit.text)
        position = edit.end
    pieces.append(text[position:])
    return "".join(pieces)


def migrate_text(text: str, kind: str) -> tuple[str, list[Note]]:
    """The migrated text and the notes, for a file of ``kind`` (see ``kind_of``)."""
    if kind == "python":
        try:
            source = PythonSource.parse(text)
        except (SyntaxError, tokenize.TokenError, ValueError) as exc:
            line = getattr(exc, "lineno", None) or 1
            return text, [Note(line, f"not changed: Python cannot parse this file ({exc})")]
        migrate_imports(source)
        migrate_literals(source)
        return source.result(), sorted(source.notes, key=lambda note: note.line)
    rewriters = {
        "supervisor": commands.supervisor_edits,
        "systemd": commands.systemd_edits,
        "procfile": commands.procfile_edits,
        "dockerfile": commands.dockerfile_edits,
    }
    return _apply(text, rewriters[kind](text)), []


def migrate_file(path: Path) -> FileResult | None:
    kind = kind_of(path)
    if kind is None:
        return None
    raw = path.read_bytes()
    if kind == "python":
        encoding, _ = tokenize.detect_encoding(iter(raw.splitlines(keepends=True)).__next__)
    else:
        encoding = "utf-8"
    try:
        old = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        return FileResult(path, "", "", [Note(1, f"not changed: cannot decode it ({exc})")])
    new, notes = migrate_text(old, kind)
    return FileResult(path, old, new, notes, encoding)


def iter_files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_file():
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(
                d
                for d in dirs
                if d not in SKIP_DIRS
                and not d.endswith(".egg-info")
                and not (Path(root, d) / "pyvenv.cfg").exists()
            )
            for name in sorted(files):
                candidate = Path(root, name)
                if kind_of(candidate) is not None:
                    yield candidate


def diff(result: FileResult) -> str:
    name = str(result.path)
    return "".join(
        difflib.unified_diff(
            result.old.splitlines(keepends=True),
            result.new.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="narrows migrate",
        description="Rename Channels, channels_redis and Daphne to narrows in Python code, "
        "settings, and supervisor/systemd/Procfile/Dockerfile command lines. Prints a diff; "
        "--write applies it.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or directories")
    parser.add_argument("--write", action="store_true", help="apply the changes to the files")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 if any file would change"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print the diff")
    args = parser.parse_args(argv)
    for path in args.paths:
        if not path.exists():
            parser.error(f"{path} does not exist")
    changed = scanned = notes = 0
    for path in iter_files(args.paths):
        result = migrate_file(path)
        if result is None:
            continue
        scanned += 1
        for note in result.notes:
            notes += 1
            print(f"{path}:{note.line}: {note.message}", file=sys.stderr)
        if not result.changed:
            continue
        changed += 1
        if not args.quiet:
            sys.stdout.write(diff(result))
        if args.write:
            path.write_bytes(result.new.encode(result.encoding))
    verb = "changed" if args.write else "would change"
    print(
        f"narrows migrate: {changed} of {scanned} files {verb}, {notes} notes"
        + ("" if args.write or not changed else "; run with --write to apply"),
        file=sys.stderr,
    )
    return 1 if args.check and changed else 0
