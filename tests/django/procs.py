"""Child processes for the Django tests: ``manage.py`` commands, the demo, the narrows CLI.

Output goes to files (not pipes) so a test can look at it while the process runs, and a
failing test shows it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from tests.helpers import ROOT, default_sigint, wait_for_port

CHAT_DIR = ROOT / "examples" / "chat"


def child_env(extra: dict[str, str] | None) -> dict[str, str]:
    """This environment without the test run's DJANGO_SETTINGS_MODULE (the child's
    manage.py or asgi.py sets its own), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


class Process:
    """A running child with its combined stdout/stderr in a file."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: str | os.PathLike[str],
        env: dict[str, str] | None = None,
    ) -> None:
        self.args = list(args)
        self._log = tempfile.NamedTemporaryFile(prefix="narrows-test-", suffix=".log")  # noqa: SIM115
        full_env = child_env(env)
        self.proc = subprocess.Popen(
            self.args,
            cwd=cwd,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the autoreloader's child goes down with it
            preexec_fn=default_sigint,
        )

    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30.0, start: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output()[start:]:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"process exited ({self.proc.returncode}) before printing {text!r}:\n"
                    f"{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {text!r} in the output, got:\n{self.output()}")
            time.sleep(0.05)

    def wait_for_port(self, port: int, timeout: float = 30.0) -> None:
        try:
            wait_for_port(port, timeout=timeout)
        except TimeoutError:
            raise AssertionError(
                f"nothing listening on {port}; output of {self.args}:\n{self.output()}"
            ) from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> Process:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc is not None:
            print(f"--- output of {' '.join(self.args)} ---\n{self.output()}")
        self._log.close()


def manage(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def start_chat_server(port: int, db: Path, env: dict[str, str] | None = None) -> Process:
    """The chat demo served by the ``narrows`` command (as ``scripts/demo`` does)."""
    proc = Process(
        [sys.executable, "-m", "narrows", "-p", str(port), "chatsite.asgi:application"],
        cwd=CHAT_DIR,
        env={"CHAT_DB": str(db), **(env or {})},
    )
    proc.wait_for_port(port)
    return proc


def prepare_chat_db(db: Path) -> None:
    """Migrate a fresh demo database and create the demo users."""
    for command in (["migrate", "--noinput", "-v", "0"], ["demo_users"]):
        done = manage(CHAT_DIR, *command, env={"CHAT_DB": str(db)})
        assert done.returncode == 0, done.stdout + done.stderr
