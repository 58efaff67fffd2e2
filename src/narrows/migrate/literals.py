"""Strings that name Channels: ``INSTALLED_APPS`` entries, ``CHANNEL_LAYERS`` backends and
module paths handed to ``mock.patch()``, ``pytest.importorskip()`` and friends.

Only strings in those places change. ``"channels"`` anywhere else (a pytest marker, a
client name, a log message, a dict key) is left alone: it may mean something else.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from narrows.migrate import mapping
from narrows.migrate.source import PythonSource

#: Calls whose first argument is a module path (``mock.patch("channels.layers.x")``).
MODULE_PATH_CALLS = frozenset(
    {"patch", "importorskip", "import_module", "import_string", "find_spec", "setattr", "delattr"}
)
#: Calls whose first argument is an app name or label.
APP_NAME_CALLS = frozenset({"is_installed", "get_app_config"})
#: ``INSTALLED_APPS.append("channels")`` and friends.
LIST_METHODS = frozenset({"append", "insert", "extend", "remove", "index"})

STATICFILES = "django.contrib.staticfiles"


def migrate_literals(source: PythonSource) -> None:
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and any(_names(t, "INSTALLED_APPS") for t in targets):
                _migrate_apps(source, node.value)
            if node.value is not None:
                for target in targets:
                    if _is_backend_subscript(target):
                        _migrate_backend(source, node.value)
        elif isinstance(node, ast.keyword) and node.arg == "INSTALLED_APPS":
            _migrate_apps(source, node.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if _is_str(key, "INSTALLED_APPS"):
                    _migrate_apps(source, value)
                elif _is_str(key, "BACKEND"):
                    _migrate_backend(source, value)
        elif isinstance(node, ast.Call):
            _migrate_call(source, node)


def _names(node: ast.expr, name: str) -> bool:
    """``node`` is ``name`` or ``something.name``."""
    return (isinstance(node, ast.Name) and node.id == name) or (
        isinstance(node, ast.Attribute) and node.attr == name
    )


def _is_str(node: ast.AST | None, value: str | None = None) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (value is None or node.value == value)
    )


def _is_backend_subscript(node: ast.expr) -> bool:
    return isinstance(node, ast.Subscript) and _is_str(node.slice, "BACKEND")


def _migrate_backend(source: PythonSource, value: ast.expr) -> None:
    if not isinstance(value, ast.Constant) or not isinstance(value.value, str):
        return
    target = mapping.backend_target(value.value)
    if target is not None and source.replace_string(value, target):
        _check_importable(source, value, target)


def _check_importable(source: PythonSource, node: ast.AST, dotted: str) -> None:
    import importlib

    module, _, name = dotted.rpartition(".")
    try:
        found = hasattr(importlib.import_module(module), name)
    except ImportError as exc:
        source.note(node, f"{dotted} does not import here ({exc}); check the rename")
        return
    if not found:
        source.note(node, f"narrows has no {dotted}: edit this by hand")


def _app_strings(node: ast.expr) -> Iterator[tuple[ast.Constant, ast.expr | None]]:
    """String constants in an ``INSTALLED_APPS`` value, with the display they belong to."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node, None
    elif isinstance(node, ast.List | ast.Tuple | ast.Set):
        for element in node.elts:
            if isinstance(element, ast.Constant) and isinstance(element.value, str):
                yield element, node
            else:
                yield from _app_strings(element)
    elif isinstance(node, ast.BinOp):
        yield from _app_strings(node.left)
        yield from _app_strings(node.right)
    elif isinstance(node, ast.Starred):
        yield from _app_strings(node.value)
    elif isinstance(node, ast.IfExp):
        yield from _app_strings(node.body)
        yield from _app_strings(node.orelse)
    elif isinstance(node, ast.Dict):  # modify_settings(INSTALLED_APPS={"append": [...]})
        for value in node.values:
            yield from _app_strings(value)


def _migrate_apps(source: PythonSource, value: ast.expr) -> None:
    seen_narrows: set[int] = set()  # displays that already list narrows
    kept_positions: dict[int, list[str]] = {}
    for constant, display in _app_strings(value):
        key = id(display) if display is not None else id(constant)
        entries = kept_positions.setdefault(key, [])
        name = str(constant.value)
        new = mapping.APP_NAMES.get(name)
        if name in mapping.NARROWS_APPS:
            entries.append(name)
            seen_narrows.add(key)
            continue
        if new is None:
            entries.append(name)
            continue
        if display is not None and key in seen_narrows:
            # "daphne" and "channels" both become "narrows": Django refuses a label twice.
            source.delete_element(constant)
            continue
        if source.replace_string(constant, new):
            entries.append(new)
            seen_narrows.add(key)
    for entries in kept_positions.values():
        narrows_at = next((i for i, e in enumerate(entries) if e in mapping.NARROWS_APPS), None)
        if narrows_at is not None and STATICFILES in entries[:narrows_at]:
            source.note(
                value,
                f'"narrows" comes after "{STATICFILES}" in INSTALLED_APPS: move it above, '
                "so that runserver is narrows' (system check narrows.W001)",
            )


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _migrate_call(source: PythonSource, node: ast.Call) -> None:
    name = _call_name(node)
    if (
        name in LIST_METHODS
        and isinstance(node.func, ast.Attribute)
        and _names(node.func.value, "INSTALLED_APPS")
    ):
        for arg in node.args:
            _migrate_apps(source, arg)
        return
    first = node.args[0] if node.args else None
    if name == "patch" and first is None:
        first = next((kw.value for kw in node.keywords if kw.arg == "target"), None)
    if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
        return
    if name in MODULE_PATH_CALLS:
        if mapping.top_level(first.value) in mapping.RENAMED_PACKAGES:
            target = mapping.module_target(first.value)
            if target is None:
                source.note(first, f"{first.value} has no narrows counterpart: edit by hand")
            else:
                source.replace_string(first, target)
    elif name in APP_NAME_CALLS and first.value in ("channels", "daphne"):
        source.replace_string(first, "narrows")
