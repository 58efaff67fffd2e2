"""The narrows command's logging: ``--help`` lists each option once, ``--log-config`` in
the three formats uvicorn reads, and the ``narrows.access`` logger."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from narrows.cli import COMMANDS, commands_help
from narrows.server.cli import build_config, build_parser
from tests.helpers import free_port, narrows_process

APP = "tests.server.asgi_hello:app"


def test_help_lists_each_spelling_once_and_the_other_commands() -> None:
    text = build_parser(commands_help()).format_help()
    for line in text.splitlines():
        options = re.findall(r"(?<![\w-])(--?[\w-]+)", line.split("  ")[1] if "  " in line else "")
        assert len(options) == len(set(options)), line
    assert text.count("--lifespan {auto,on,off}") == 1
    # argparse on Python 3.13+ names the metavar once: "-b, --bind ADDRESS"
    assert re.search(r"^  -b( ADDRESS)?, --bind ADDRESS\b", text, re.M)
    assert "--http_timeout" not in text.replace("(--http_timeout)", "")  # twins are hidden...
    assert build_config(["--http_timeout", "3", APP]).http_timeout == 3.0  # ...and accepted
    for name, command in COMMANDS.items():
        assert f"narrows {name} {command.usage}" in text


def test_narrows_help_is_the_command_s_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "narrows", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "usage: narrows [options] module.path:application" in done.stdout
    assert "narrows startproject NAME [DIRECTORY]" in done.stdout


JSON_CONFIG = {
    "version": 1,
    "formatters": {"plain": {"format": "JSONCFG %(name)s %(levelname)s %(message)s"}},
    "handlers": {
        "file": {"class": "logging.FileHandler", "filename": "{log}", "formatter": "plain"}
    },
    "loggers": {
        "narrows": {"handlers": ["file"], "level": "INFO", "propagate": False},
        "narrows.access": {"handlers": ["file"], "level": "INFO", "propagate": False},
    },
}

YAML_CONFIG = """\
version: 1
formatters:
  plain: {format: "YAMLCFG %(name)s %(levelname)s %(message)s"}
handlers:
  file: {class: logging.FileHandler, filename: "{log}", formatter: plain}
loggers:
  narrows: {handlers: [file], level: INFO, propagate: false}
  narrows.access: {handlers: [file], level: INFO, propagate: false}
"""

INI_CONFIG = """\
[loggers]
keys = root,narrows,access

[handlers]
keys = file

[formatters]
keys = plain

[logger_root]
handlers =

[logger_narrows]
qualname = narrows
handlers = file
level = INFO
propagate = 0

[logger_access]
qualname = narrows.access
handlers = file
level = INFO
propagate = 0

[handler_file]
class = FileHandler
args = ("{log}",)
formatter = plain

[formatter_plain]
format = INICFG %(name)s %(levelname)s %(message)s
"""


def write_config(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    log = tmp_path / "narrows.log"
    if kind == "json":
        path = tmp_path / "logging.json"
        path.write_text(json.dumps(JSON_CONFIG).replace("{log}", str(log)))
    elif kind == "yaml":
        path = tmp_path / "logging.yaml"
        path.write_text(YAML_CONFIG.replace("{log}", str(log)))
    else:
        path = tmp_path / "logging.ini"
        path.write_text(INI_CONFIG.replace("{log}", str(log)))
    return path, log


@pytest.mark.parametrize("kind", ["json", "yaml", "ini"])
def test_log_config_routes_server_and_access_records(kind: str, tmp_path: Path) -> None:
    config, log = write_config(tmp_path, kind)
    port = free_port()
    args = ["--log-config", str(config), "-p", str(port), APP]
    with narrows_process(args, port=port) as proc:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/logged?x=1")
        assert conn.getresponse().read() == b"Hello, world!"
        conn.close()
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    written = log.read_text()
    prefix = f"{kind.upper()}CFG"
    assert f"{prefix} narrows.server INFO Listening on http://127.0.0.1:{port}" in written
    assert re.search(
        rf'{prefix} narrows.access INFO 127\.0\.0\.1:\d+ - - \[.+\] "GET /logged" 200 13', written
    ), written
    assert "Listening on" not in out  # the file's handlers replace narrows' own


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("missing.json", None, "Could not apply --log-config"),
        ("bad.json", "{nope", "is not valid JSON"),
        ("list.yaml", "- 1\n", "expected a logging dictConfig mapping with a 'version' key"),
        ("bad.ini", "[loggers]\nkeys = nothing\n", "Could not apply --log-config"),
    ],
)
def test_a_bad_log_config_is_one_clear_error(
    name: str, content: str | None, error: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    done = subprocess.run(
        [sys.executable, "-m", "narrows", "--log-config", str(path), APP],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert error in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
