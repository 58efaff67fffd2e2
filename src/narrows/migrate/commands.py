"""``daphne`` in the command lines of supervisor, systemd, Procfile and Dockerfile files.

A command line is split into shell words (quotes and backslashes as POSIX shells read
them, with each word's position kept), and only a word in command position is renamed:
the program itself (``daphne``, ``/venv/bin/daphne``), ``python -m daphne``, and the same
after ``exec``/``env``/``nohup``, ``VAR=value`` prefixes, ``&&``, ``;``, ``|`` or inside
``sh -c '...'``. Arguments are never touched: ``-u /run/daphne/daphne.sock`` keeps its path
(it names a directory on your machine), and ``[program:daphne]`` keeps its name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from narrows.migrate import mapping
from narrows.migrate.source import Edit

#: Words that run the word after them as the command (their options are skipped).
WRAPPERS = frozenset({"exec", "env", "nohup", "nice", "time", "command", "chpst", "setsid"})
#: ``poetry run daphne``, ``pipenv run daphne``, ``uv run daphne``.
RUNNERS = frozenset({"poetry", "pipenv", "uv", "pdm", "hatch", "rye"})
SEPARATORS = frozenset({"&&", "||", ";", "|", "&"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh"})

#: systemd keys that hold command lines.
SYSTEMD_KEYS = frozenset(
    {"ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost"}
)


@dataclass(frozen=True)
class Word:
    """A shell word: its unquoted value, and where that value is written verbatim (the
    offset of its first character), or None when quotes or backslashes break it up."""

    value: str
    verbatim_at: int | None


def shell_words(text: str, base: int = 0) -> Iterator[Word]:
    """Split ``text`` as a POSIX shell would (no expansion); separators are words too."""
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char in " \t\r\n":
            index += 1
            continue
        if text.startswith(("\\\n", "\\\r\n"), index):  # a line continuation
            index += 2 if text[index + 1] == "\n" else 3
            continue
        if char == "#":
            return  # a comment runs to the end of the line
        if char in ";&|":
            end = index + 2 if text[index : index + 2] in ("&&", "||") else index + 1
            yield Word(text[index:end], base + index)
            index = end
            continue
        start, parts = index, []
        while index < length and text[index] not in " \t\r\n;&|":
            char = text[index]
            if char == "\\" and index + 1 < length:
                parts.append((index, text[index + 1]))
                index += 2
            elif char in "'\"":
                close = text.find(char, index + 1)
                close = length if close < 0 else close
                parts.append((index, text[index + 1 : close]))
                index = close + 1
            else:
                parts.append((index, char))
                index += 1
        value = "".join(part for _, part in parts)
        raw = text[start:index]
        if raw == value:
            verbatim_at: int | None = base + start
        elif len(parts) == 1 and raw[:1] in ("'", '"') and raw[1:-1] == value:
            verbatim_at = base + start + 1  # one quoted string without escapes
        else:
            verbatim_at = None
        yield Word(value, verbatim_at)


def command_edits(text: str, base: int = 0) -> list[Edit]:
    """Edits renaming ``daphne`` where ``text`` (a shell command line) runs it."""
    return word_edits(list(shell_words(text, base)))


def word_edits(words: list[Word]) -> list[Edit]:
    """Edits renaming ``daphne`` where the command made of ``words`` runs it."""
    edits: list[Edit] = []
    expect_command = True
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.value in SEPARATORS:
            expect_command = True
            continue
        if not expect_command:
            continue
        if "=" in word.value and not word.value.startswith(("-", "=")):
            continue  # VAR=value before the command
        name = PurePosixPath(word.value).name
        if name in WRAPPERS:
            while index < len(words) and words[index].value.startswith("-"):
                index += 1
            continue
        if name in RUNNERS and index < len(words) and words[index].value == "run":
            index += 1
            continue
        expect_command = False
        if name in mapping.COMMANDS:
            edits.extend(_rename_tail(word, name))
        elif name.startswith("python"):
            edits.extend(_python_m(words, index))
        elif name in SHELLS and index + 1 < len(words) and words[index].value == "-c":
            script = words[index + 1]
            if script.verbatim_at is not None:
                edits.extend(command_edits(script.value, script.verbatim_at))
    return edits


def _rename_tail(word: Word, name: str) -> list[Edit]:
    """``/venv/bin/daphne`` -> ``/venv/bin/narrows`` (only where written verbatim)."""
    if word.verbatim_at is None:
        return []
    end = word.verbatim_at + len(word.value)
    return [Edit(end - len(name), end, mapping.COMMANDS[name])]


def _python_m(words: list[Word], index: int) -> list[Edit]:
    while index < len(words) and words[index].value.startswith("-"):
        if words[index].value == "-m" and index + 1 < len(words):
            module = words[index + 1]
            if module.value in mapping.COMMANDS:
                return _rename_tail(module, module.value)
            return []
        index += 1
    return []


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(offset, line) for each line, with backslash-continued lines joined (same length)."""
    offset = 0
    pending_start, pending = 0, ""
    for line in text.splitlines(keepends=True):
        if not pending:
            pending_start = offset
        pending += line
        offset += len(line)
        if not line.rstrip("\r\n").endswith("\\"):
            yield pending_start, pending
            pending = ""
    if pending:
        yield pending_start, pending


def _value_after(line: str, separator: str) -> tuple[str, int] | None:
    key, sep, _ = line.partition(separator)
    if not sep:
        return None
    return key.strip(), len(key) + len(sep)


def supervisor_edits(text: str) -> list[Edit]:
    """``command=`` of ``[program:x]`` sections (continuation lines included)."""
    edits: list[Edit] = []
    in_program = False
    lines = list(_ini_entries(text))
    for offset, line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            in_program = stripped.startswith(("[program:", "[fcgi-program:"))
            continue
        found = _value_after(line, "=")
        if in_program and found and found[0] == "command":
            value = line[found[1] :]
            for marker in (" ;", "\t;"):  # supervisor's inline comments
                if marker in value:
                    value = value[: value.index(marker)]
            edits.extend(command_edits(value, offset + found[1]))
    return edits


def _ini_entries(text: str) -> Iterator[tuple[int, str]]:
    """INI entries with their indented continuation lines joined (same length)."""
    entries: list[tuple[int, str]] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        if line[:1] in (" ", "\t") and line.strip() and entries:
            start, previous = entries[-1]
            entries[-1] = (start, previous + line)
        else:
            entries.append((offset, line))
        offset += len(line)
    yield from entries


def systemd_edits(text: str) -> list[Edit]:
    edits: list[Edit] = []
    for offset, line in _logical_lines(text):
        found = _value_after(line, "=")
        if not found or found[0] not in SYSTEMD_KEYS:
            continue
        value_at = found[1]
        value = line[value_at:]
        # Prefixes that change how systemd runs the command: "-", "@", "+", "!", ":".
        stripped = value.lstrip(" \t")
        skip = len(value) - len(stripped)
        while stripped and stripped[0] in "-@+!:":
            stripped, skip = stripped[1:], skip + 1
        edits.extend(command_edits(line[value_at + skip :], offset + value_at + skip))
    return edits


def procfile_edits(text: str) -> list[Edit]:
    edits: list[Edit] = []
    for offset, line in _logical_lines(text):
        if line.lstrip().startswith("#"):
            continue
        found = _value_after(line, ":")
        if found and found[0] and " " not in found[0]:
            edits.extend(command_edits(line[found[1] :], offset + found[1]))
    return edits


def dockerfile_edits(text: str) -> list[Edit]:
    """``CMD``/``ENTRYPOINT`` in shell form or exec (JSON array) form."""
    edits: list[Edit] = []
    for offset, line in _logical_lines(text):
        stripped = line.lstrip()
        instruction, _, rest = stripped.partition(" ")
        if instruction.upper() not in ("CMD", "ENTRYPOINT"):
            continue
        rest_at = offset + len(line) - len(stripped) + len(instruction) + 1
        if rest.lstrip().startswith("["):
            edits.extend(_exec_form(rest, rest_at))
        else:
            edits.extend(command_edits(rest, rest_at))
    return edits


def _exec_form(rest: str, base: int) -> list[Edit]:
    """``["daphne", "-b", "0.0.0.0", ...]``: each JSON string is a word."""
    try:
        argv = json.loads(rest)
    except ValueError:
        return []
    if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
        return []
    words, position = [], 0
    for arg in argv:
        encoded = json.dumps(arg)
        found = rest.find(encoded, position)
        verbatim = found >= 0 and encoded[1:-1] == arg
        words.append(Word(arg, base + found + 1 if verbatim else None))
        if found >= 0:
            position = found + len(encoded)
    return word_edits(words)
