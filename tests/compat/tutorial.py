"""The Channels tutorial's chat project (django/channels docs, part 2), built at test time.

Its code is read from the tutorial's own code blocks in a django/channels checkout (the
same one Channels' suite comes from), laid into a ``django-admin startproject`` project,
with the settings the tutorial tells you to write.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.compat.channels_suite import TAG

TUTORIAL_FILES = ("chat/consumers.py", "chat/routing.py", "mysite/asgi.py")


def code_blocks(rst: str) -> dict[str, str]:
    """``{path: code}`` for each python code block whose first line is ``# path``
    (a later block for the same path wins, as the tutorial replaces files as it goes)."""
    blocks: dict[str, str] = {}
    lines = rst.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != ".. code-block:: python":
            continue
        body: list[str] = []
        for following in lines[index + 1 :]:
            if following and not following.startswith("    "):
                break
            body.append(following[4:])
        code = "\n".join(body).strip("\n") + "\n"
        first = code.splitlines()[0]
        if first.startswith("# ") and first.endswith(".py"):
            blocks[first[2:]] = code
    return blocks


def tutorial_source(checkout: Path) -> dict[str, str]:
    if (checkout / "docs").is_dir():
        rst = (checkout / "docs" / "tutorial" / "part_2.rst").read_text()
    else:
        rst = subprocess.run(
            ["git", f"--git-dir={checkout}", "show", f"{TAG}:docs/tutorial/part_2.rst"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    blocks = code_blocks(rst)
    return {path: blocks[path] for path in TUTORIAL_FILES}


def make_project(checkout: Path, parent: Path) -> Path:
    """The tutorial project as a Channels user has it, in ``parent/mysite``."""
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite"],
        cwd=parent,
        check=True,
        capture_output=True,
    )
    project = parent / "mysite"
    (project / "chat").mkdir()
    (project / "chat" / "__init__.py").write_text("")
    for path, code in tutorial_source(checkout).items():
        (project / path).write_text(code)
    settings = project / "mysite" / "settings.py"
    text = settings.read_text()
    # Part 1 and 2: "daphne" first and "chat" in INSTALLED_APPS, ASGI_APPLICATION, and a
    # channel layer (the in-memory one, which the tutorial offers instead of Redis).
    text = text.replace("INSTALLED_APPS = [\n", 'INSTALLED_APPS = [\n    "daphne",\n    "chat",\n')
    text += '\nASGI_APPLICATION = "mysite.asgi.application"\n'
    text += 'CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}\n'
    settings.write_text(text)
    return project
