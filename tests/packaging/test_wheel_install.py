"""The install the docs describe: build the sdist and wheel, install the wheel with [redis]
into a fresh venv outside the checkout, and use it there as a new user would.

``python -m build`` builds the wheel from the sdist, so a file missing from the sdist
(a template, ``py.typed``, the licence) fails here too.
"""

from __future__ import annotations

import http.cookiejar
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import urllib.parse
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest
from websockets.sync.client import connect

from narrows import __version__
from tests.helpers import free_port, require_binary, wait_for_port
from tests.server.http.test_compiled import COMPILED

pytestmark = pytest.mark.slow

PASSWORD = "wheel-test-password"


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv with the wheel and its [redis] extra: (bin directory, environment)."""
    home = tmp_path_factory.mktemp("user")
    venv.create(home / "venv", with_pip=True)
    bindir = home / "venv" / "bin"
    env = {
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
    run([str(bindir / "python"), "-m", "pip", "install", "-q", f"{wheel}[redis]"], home, env)
    return bindir, env


def test_sdist_and_wheel_carry_the_package_data(dist: Path) -> None:
    (sdist,) = dist.glob(f"narrows-{__version__}.tar.gz")
    (wheel,) = dist.glob(f"narrows-{__version__}-*.whl")
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", "src/narrows/py.typed"} <= in_sdist
    with zipfile.ZipFile(wheel) as whl:
        in_wheel = set(whl.namelist())
        metadata = whl.read(f"narrows-{__version__}.dist-info/METADATA").decode()
    assert "narrows/py.typed" in in_wheel
    assert "narrows/project_template/project_name/settings.py-tpl" in in_wheel
    assert f"narrows-{__version__}.dist-info/licenses/LICENSE" in in_wheel
    assert "License-Expression: BSD-3-Clause" in metadata
    assert not any(name.startswith("tests/") for name in in_wheel)
    assert not any(name.endswith(".c") for name in in_sdist | in_wheel)  # mypyc's output
    # A checkout's in-place builds leave these in src/; each build writes its own.
    assert not any(name.endswith(".so") or "/_compiled_" in name for name in in_sdist)


def test_the_wheel_carries_the_compiled_http_core(dist: Path) -> None:
    """Built where a C compiler is (CI installs one), the wheel is for this interpreter and
    holds the seven compiled modules, mypyc's shared library and the digests of their
    sources (setup.py); the sources themselves stay in it too."""
    require_binary("gcc", "cc")
    tag = sys.implementation.cache_tag.replace("cpython-", "cp")
    (wheel,) = dist.glob(f"narrows-{__version__}-{tag}-{tag}-*.whl")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    with zipfile.ZipFile(wheel) as whl:
        in_wheel = set(whl.namelist())
    for name in COMPILED:
        assert f"narrows/server/http/{name}{suffix}" in in_wheel, sorted(in_wheel)
        assert f"narrows/server/http/{name}.py" in in_wheel
    assert f"narrows_http__mypyc{suffix}" in in_wheel
    record = sys.implementation.cache_tag.replace("-", "_")
    assert f"narrows/server/http/_compiled_{record}.py" in in_wheel


def test_the_installed_command_runs_outside_the_checkout(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    bindir, env = installed
    core = "compiled" if shutil.which("gcc") or shutil.which("cc") else "pure Python"
    assert run([str(bindir / "narrows"), "--version"], tmp_path, env).strip() == (
        f"narrows {__version__} (HTTP core: {core})"
    )
    where = run(
        [str(bindir / "python"), "-c", "import narrows, redis; print(narrows.__file__)"],
        tmp_path,
        env,
    )
    assert where.startswith(str(bindir.parent)), where  # the wheel, not the checkout

    run([str(bindir / "narrows"), "startproject", "mysite"], tmp_path, env)
    project = tmp_path / "mysite"
    python = str(bindir / "python")
    run([python, "manage.py", "migrate", "--noinput"], project, env)
    admin_env = {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
    run(
        [python, "manage.py", "createsuperuser", "--noinput", "--username", "admin",
         "--email", "admin@example.com"],
        project,
        admin_env,
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [str(bindir / "narrows"), "-p", str(port), "mysite.asgi:application"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        assert_admin_login_works(base)
        with connect(f"ws://127.0.0.1:{port}/ws/echo/", origin=base, open_timeout=10) as ws:  # type: ignore[arg-type]
            ws.send("hello")
            assert ws.recv(timeout=10) == "hello"
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert server.returncode == 0, output
    assert f"Listening on http://127.0.0.1:{port}" in output, output


def assert_admin_login_works(base: str) -> None:
    """Log in to the admin: the page renders, the migrated database holds the user."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(f"{base}/admin/login/", timeout=10) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page
    form = {"csrfmiddlewaretoken": token[1], "username": "admin", "password": PASSWORD}
    request = urllib.request.Request(
        f"{base}/admin/login/?next=/admin/",
        data=urllib.parse.urlencode({**form, "next": "/admin/"}).encode(),
        headers={"Referer": f"{base}/admin/login/"},
    )
    with opener.open(request, timeout=10) as response:
        assert response.url == f"{base}/admin/", response.url
        assert "Site administration" in response.read().decode()
