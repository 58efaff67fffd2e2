"""``narrows.install_as_channels()``: code that imports ``channels`` gets narrows.

The pattern of ``pymysql.install_as_MySQLdb()``. After the call, ``import channels``,
``import channels.X`` and ``import channels_redis.X`` return narrows' own module objects
(``channels`` is ``narrows``, ``channels.layers`` is ``narrows.layers``, ``channels_redis``
is ``narrows.layers.redis``), so a third-party library written for Channels and a project
that was not renamed run on narrows unchanged. The modules are the same objects, not
copies: ``channels.layers.channel_layers is narrows.layers.channel_layers``.

Call it before anything imports ``channels``: at the top of ``settings.py`` works for
``manage.py`` and for the ``narrows`` command alike (both import settings before the
application), or in ``asgi.py`` / ``manage.py`` before the first Channels import.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["ALIASES", "ChannelsAlreadyImported", "install_as_channels", "is_installed"]

#: Top-level package of the code that imports it -> the narrows package that serves it.
ALIASES: dict[str, str] = {
    "channels": "narrows",
    "channels_redis": "narrows.layers.redis",
}


class ChannelsAlreadyImported(ImportError):
    """The real Channels (or channels_redis) was imported before ``install_as_channels()``."""


def _target(fullname: str) -> str | None:
    """``channels.layers`` -> ``narrows.layers``; None for names outside the aliases."""
    top, dot, rest = fullname.partition(".")
    base = ALIASES.get(top)
    if base is None:
        return None
    return f"{base}{dot}{rest}"


class _AliasLoader(importlib.abc.Loader):
    """Loads an alias by importing the narrows module and handing back that same object."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._real_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the alias spec on the shared module; put narrows' own
        # back so pickling, reload() and tracebacks keep naming the real module.
        module.__spec__ = self._real_spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: resolves ``channels*`` / ``channels_redis*`` to narrows."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        real = _target(fullname)
        if real is None:
            return None
        try:
            found = importlib.util.find_spec(real)
        except ModuleNotFoundError:
            found = None
        if found is None:
            return None  # "No module named 'channels.nope'", as without the alias
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real), is_package=False)


_FINDER = _AliasFinder()


def is_installed() -> bool:
    return _FINDER in sys.meta_path


def _is_foreign(name: str) -> bool:
    """True if ``sys.modules[name]`` is not narrows' module (the real Channels is loaded)."""
    module = sys.modules.get(name)
    real = _target(name)
    return module is not None and (real is None or sys.modules.get(real) is not module)


def install_as_channels() -> None:
    """Make ``channels`` and ``channels_redis`` imports return narrows' modules.

    Idempotent. Raises ``ChannelsAlreadyImported`` if the real Channels or channels_redis
    is already imported: the two would then run side by side, each with its own layers.
    """
    if is_installed():
        return
    already = sorted(
        name
        for name in list(sys.modules)
        if name.partition(".")[0] in ALIASES and _is_foreign(name)
    )
    if already:
        first = sys.modules[already[0]]
        where = getattr(first, "__file__", None) or "an unknown location"
        raise ChannelsAlreadyImported(
            "narrows.install_as_channels() must run before anything imports Channels, "
            f"but {already[0]!r} is already imported from {where}. Call it earlier (at the "
            "top of settings.py, or in manage.py/asgi.py before the first Channels import), "
            "or uninstall channels / channels-redis."
        )
    sys.meta_path.insert(0, _FINDER)
