"""What ``narrows migrate`` renames: module paths, app names, layer backends, commands.

Module paths follow the mapping of ``narrows.install_as_channels()`` (``channels.X`` ->
``narrows.X``, ``channels_redis.X`` -> ``narrows.layers.redis.X``), so a migrated project and
an aliased one import the same modules.
"""

from __future__ import annotations

from narrows.channels_alias import ALIASES

#: Daphne modules with a narrows counterpart (the rest of Daphne has none).
DAPHNE_MODULES = {
    "daphne.management.commands.runserver": "narrows.management.commands.runserver",
}

#: INSTALLED_APPS entries of Channels and Daphne (one narrows app replaces both).
APP_NAMES = {
    "channels": "narrows",
    "daphne": "narrows",
    "channels.apps.ChannelsConfig": "narrows.apps.NarrowsConfig",
    "daphne.apps.DaphneConfig": "narrows.apps.NarrowsConfig",
}
NARROWS_APPS = frozenset(APP_NAMES.values())

#: CHANNEL_LAYERS backends by their documented narrows names; other Channels paths follow
#: the module mapping.
BACKENDS = {
    "channels.layers.InMemoryChannelLayer": "narrows.layers.InMemoryChannelLayer",
    "channels_redis.core.RedisChannelLayer": "narrows.layers.redis.RedisChannelLayer",
}

#: Top-level packages whose imports are rewritten.
RENAMED_PACKAGES = frozenset({*ALIASES, "daphne"})

#: The executable name in command lines.
COMMANDS = {"daphne": "narrows"}


def top_level(dotted: str) -> str:
    return dotted.partition(".")[0]


def module_target(module: str) -> str | None:
    """The narrows module for a Channels/channels_redis/Daphne module, None if none."""
    top, dot, rest = module.partition(".")
    if top in ALIASES:
        return f"{ALIASES[top]}{dot}{rest}"
    if top == "daphne":
        for old, new in DAPHNE_MODULES.items():
            if module == old or module.startswith(old + "."):
                return new + module[len(old) :]
    return None


def backend_target(path: str) -> str | None:
    """The narrows backend for a Channels one (``"channels.layers.X"``), None otherwise."""
    if path in BACKENDS:
        return BACKENDS[path]
    if top_level(path) in ALIASES:
        return module_target(path)
    return None
