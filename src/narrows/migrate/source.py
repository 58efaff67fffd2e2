"""A Python file as text, its tokens and AST, and the edits made to it.

Every rewrite in ``narrows migrate`` is an ``Edit``: a character range of the original text
and its replacement, found from the AST (what a name or literal means) and the tokenizer
(exactly where it is written). Nothing else in the file changes: formatting, comments and
quotes stay as they were.
"""

from __future__ import annotations

import ast
import bisect
import io
import itertools
import tokenize
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Edit:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Note:
    """Something the user must look at: ``path:line: message``."""

    line: int
    message: str


@dataclass
class PythonSource:
    text: str
    tree: ast.Module
    tokens: list[tokenize.TokenInfo]
    edits: list[Edit] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> PythonSource:
        """Raises ``SyntaxError`` (or ``tokenize.TokenError``) for a file Python can't read."""
        tree = ast.parse(text)
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        source = cls(text, tree, tokens)
        source._index()
        return source

    def _index(self) -> None:
        # Python's lines end at "\n" only ("\r\n" ends in one); str.splitlines() would also
        # split at form feeds and other characters Python treats as plain whitespace.
        self._line_starts = [0]
        for index, char in enumerate(self.text):
            if char == "\n":
                self._line_starts.append(index + 1)
        self._token_starts = [self.offset_of_token(tok.start) for tok in self.tokens]

    # Positions

    def line_text(self, lineno: int) -> str:
        start = self._line_starts[lineno - 1]
        end = self._line_starts[lineno] if lineno < len(self._line_starts) else len(self.text)
        return self.text[start:end]

    def offset_of_token(self, position: tuple[int, int]) -> int:
        """A tokenizer position (line, character column) as an offset in the text."""
        line, column = position
        if line > len(self._line_starts):
            return len(self.text)
        return self._line_starts[line - 1] + column

    def offset_of_node(self, lineno: int, col_offset: int) -> int:
        """An AST position (line, UTF-8 byte column) as an offset in the text."""
        line = self.line_text(lineno)
        column = len(line.encode("utf-8")[:col_offset].decode("utf-8", errors="replace"))
        return self._line_starts[lineno - 1] + column

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offset_of_node(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset_of_node(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self._line_starts, offset)

    def tokens_between(self, start: int, end: int) -> list[tuple[int, tokenize.TokenInfo]]:
        """The significant tokens starting in ``[start, end)``, with their offsets."""
        first = bisect.bisect_left(self._token_starts, start)
        found = []
        for index in range(first, len(self.tokens)):
            offset = self._token_starts[index]
            if offset >= end:
                break
            token = self.tokens[index]
            if token.type not in _INSIGNIFICANT:
                found.append((offset, token))
        return found

    def token_after(self, offset: int) -> tuple[int, tokenize.TokenInfo] | None:
        for index in range(bisect.bisect_left(self._token_starts, offset), len(self.tokens)):
            if self.tokens[index].type not in _INSIGNIFICANT:
                return self._token_starts[index], self.tokens[index]
        return None

    def token_before(self, offset: int) -> tuple[int, tokenize.TokenInfo] | None:
        for index in range(bisect.bisect_left(self._token_starts, offset) - 1, -1, -1):
            if self.tokens[index].type not in _INSIGNIFICANT:
                return self._token_starts[index], self.tokens[index]
        return None

    # Edits

    def replace(self, start: int, end: int, text: str) -> None:
        self.edits.append(Edit(start, end, text))

    def note(self, node_or_line: ast.AST | int, message: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) else node_or_line.lineno  # type: ignore[attr-defined]
        self.notes.append(Note(line, message))

    def result(self) -> str:
        """The text with every edit applied (overlapping edits are a bug: ValueError)."""
        edits = sorted(set(self.edits))
        for before, after in itertools.pairwise(edits):
            if after.start < before.end:
                raise ValueError(f"overlapping edits {before} and {after}")
        pieces = []
        position = 0
        for edit in edits:
            pieces.append(self.text[position : edit.start])
            pieces.append(edit.text)
            position = edit.end
        pieces.append(self.text[position:])
        return "".join(pieces)

    # String literals

    def replace_string(self, node: ast.Constant, new_value: str) -> bool:
        """Rewrite the plain string literal ``node`` to ``new_value``, keeping its quotes.

        Only a literal written as one token without escapes, f- or b-prefix qualifies;
        anything else is left alone (False).
        """
        start, end = self.span(node)
        tokens = self.tokens_between(start, end)
        if len(tokens) != 1 or tokens[0][1].type != tokenize.STRING:
            return False
        literal = tokens[0][1].string
        prefix = literal[: len(literal) - len(literal.lstrip("rRuU"))]
        body = literal[len(prefix) :]
        quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
        inner = body[len(quote) : len(body) - len(quote)]
        if inner != node.value or quote not in ('"', "'", '"""', "'''"):
            return False  # escapes, or a prefix like f/b: not a plain literal
        content_start = start + len(prefix) + len(quote)
        self.replace(content_start, content_start + len(inner), new_value)
        return True

    def delete_element(self, node: ast.expr) -> None:
        """Delete ``node`` from the list/tuple/set display it is an element of, with its
        comma; its whole line when it is alone on it."""
        start, end = self.span(node)
        after = self.token_after(end)
        if after is not None and after[1].string == ",":
            cut_end = after[0] + 1
            line_start = self._line_starts[self.line_of(start) - 1]
            rest = self.token_after(cut_end)
            alone = not self.text[line_start:start].strip() and (
                rest is None or self.line_of(rest[0]) > self.line_of(cut_end)
            )
            if alone:
                line_after = self.line_of(cut_end)
                cut_end = (
                    self._line_starts[line_after]
                    if line_after < len(self._line_starts)
                    else len(self.text)
                )
                self.replace(line_start, cut_end, "")
                return
            while cut_end < len(self.text) and self.text[cut_end] in " \t":
                cut_end += 1
            self.replace(start, cut_end, "")
            return
        before = self.token_before(start)
        if before is not None and before[1].string == ",":
            self.replace(before[0], end, "")
            return
        self.replace(start, end, "")


_INSIGNIFICANT = frozenset(
    {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENCODING,
        tokenize.ENDMARKER,
    }
)
