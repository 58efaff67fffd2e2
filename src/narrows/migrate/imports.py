"""Imports of ``channels``, ``channels_redis`` and ``daphne``, and the names they bind.

``from channels.layers import get_channel_layer`` only needs its module path rewritten.
``import channels.layers`` binds the name ``channels``, so every ``channels.layers...``
expression in the file is rewritten too, unless the file also binds ``channels`` some other
way (a variable, a parameter...): then nothing about ``channels`` changes in that file and
a note says why.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict

from narrows.migrate import mapping
from narrows.migrate.source import PythonSource


def migrate_imports(source: PythonSource) -> None:
    imports: list[ast.Import] = []
    from_imports: list[ast.ImportFrom] = []
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            imports.append(node)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            from_imports.append(node)
    for node in from_imports:
        _migrate_from_import(source, node)
    renamed_tops = _migrate_plain_imports(source, imports)
    _rename_name_uses(source, renamed_tops)


def _migrate_from_import(source: PythonSource, node: ast.ImportFrom) -> None:
    module = node.module or ""
    if mapping.top_level(module) not in mapping.RENAMED_PACKAGES:
        return
    target = mapping.module_target(module)
    if target is None:
        source.note(node, f"{module} has no narrows counterpart: edit this import by hand")
        return
    start, end = source.span(node)
    tokens = source.tokens_between(start, end)
    # from <dotted module> import ...: the tokens between "from" and "import".
    import_at = next(i for i, (_, tok) in enumerate(tokens) if tok.string == "import")
    dotted = tokens[1:import_at]
    last_offset, last = dotted[-1]
    source.replace(dotted[0][0], last_offset + len(last.string), target)
    _check_names(source, node, target, [alias.name for alias in node.names])


def _migrate_plain_imports(source: PythonSource, imports: list[ast.Import]) -> set[str]:
    """Rewrite ``import channels.X [as Y]``; the top-level names whose uses must follow."""
    bound_by_import: dict[str, list[tuple[ast.Import, ast.alias, str | None]]] = defaultdict(list)
    for node in imports:
        for alias in node.names:
            top = mapping.top_level(alias.name)
            if top in mapping.RENAMED_PACKAGES:
                bound_by_import[top].append((node, alias, mapping.module_target(alias.name)))
    other_bindings = _bindings_other_than_plain_imports(source.tree)
    renamed_tops: set[str] = set()
    for top, entries in bound_by_import.items():
        binds_top = [entry for entry in entries if entry[1].asname is None]
        unmapped = [entry for entry in entries if entry[2] is None]
        for node, alias, _ in unmapped:
            source.note(node, f"{alias.name} has no narrows counterpart: edit this import by hand")
        if binds_top and unmapped:
            continue  # ``daphne.x`` uses must stay valid for the unmapped import
        new_top = mapping.top_level(mapping.module_target(top) or top)
        if binds_top and (top in other_bindings or new_top in other_bindings):
            node = binds_top[0][0]
            clash = top if top in other_bindings else new_top
            source.note(
                node,
                f"'{clash}' is also bound by something other than an import in this file; "
                f"rename the {top} imports and their uses by hand",
            )
            continue
        for node, alias, target in entries:
            if target is None:
                continue
            _rewrite_alias(source, node, alias, target)
            _check_module(source, node, target)
        if binds_top:
            renamed_tops.add(top)
    return renamed_tops


def _rewrite_alias(source: PythonSource, node: ast.Import, alias: ast.alias, target: str) -> None:
    start, end = source.span(alias)
    tokens = source.tokens_between(start, end)
    dotted = []
    for offset, token in tokens:
        if token.string == "as":
            break
        dotted.append((offset, token))
    last_offset, last = dotted[-1]
    source.replace(dotted[0][0], last_offset + len(last.string), target)


def _rename_name_uses(source: PythonSource, tops: set[str]) -> None:
    """``channels.layers.x`` -> ``narrows.layers.x``, ``channels_redis.core`` ->
    ``narrows.layers.redis.core`` wherever the imported name is read."""
    if not tops:
        return
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Name) and node.id in tops and isinstance(node.ctx, ast.Load):
            start, end = source.span(node)
            if source.text[start:end] != node.id:
                source.note(node, f"cannot locate '{node.id}' here: rename it by hand")
                continue
            target = mapping.module_target(node.id)
            if node.id == "daphne":
                target = "narrows"  # only mapped daphne modules are imported here
            source.replace(start, end, target or node.id)


def _bindings_other_than_plain_imports(tree: ast.Module) -> set[str]:
    """Names the file binds by assignment, definition, parameter, ``from`` import,
    ``import x as name``..., anything but a plain ``import name[.sub]``."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        bound.update(_bound_by(node))
    return bound


def _bound_by(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [] if isinstance(node.ctx, ast.Load) else [node.id]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.ImportFrom):
        return [alias.asname or alias.name for alias in node.names]
    if isinstance(node, ast.Import):
        return [alias.asname for alias in node.names if alias.asname]
    if isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar):
        return [node.name] if node.name else []
    if isinstance(node, ast.MatchMapping):
        return [node.rest] if node.rest else []
    if isinstance(node, ast.Global | ast.Nonlocal):
        return list(node.names)
    return []


def _check_module(source: PythonSource, node: ast.AST, target: str) -> None:
    try:
        importlib.import_module(target)
    except ImportError as exc:
        source.note(node, f"{target} does not import here ({exc}); check the rename")


def _check_names(source: PythonSource, node: ast.ImportFrom, target: str, names: list[str]) -> None:
    try:
        module = importlib.import_module(target)
    except ImportError as exc:
        source.note(node, f"{target} does not import here ({exc}); check the rename")
        return
    for name in names:
        if name == "*" or hasattr(module, name):
            continue
        try:
            importlib.import_module(f"{target}.{name}")
        except ImportError:
            source.note(node, f"narrows has no {target}.{name}: this import will fail")
