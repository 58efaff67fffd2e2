"""Real redis-server processes for the layer tests: single, shards, Sentinel, Cluster."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path

from tests.helpers import free_port, wait_for_port


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        if _port_free(port) and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class RedisServer:
    """One redis-server (or Sentinel) child process on 127.0.0.1; no persistence."""

    def __init__(
        self, binary: str, workdir: Path, port: int | None = None, extra: list[str] | None = None
    ) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.workdir = workdir / f"redis-{self.port}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            *self.extra,
        ]

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)
        return self

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill looks like to clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return result.stdout


class Sentinel(RedisServer):
    def __init__(self, binary: str, workdir: Path, master: RedisServer) -> None:
        super().__init__(binary, workdir)
        self.master = master
        self.config = self.workdir / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.workdir}\n"
            f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
        )

    def args(self) -> list[str]:
        return [self.binary, str(self.config), "--sentinel"]

    def start(self) -> Sentinel:
        super().start()
        deadline = time.monotonic() + 15
        while "127.0.0.1" not in self.cli("sentinel", "get-master-addr-by-name", "mymaster"):
            if time.monotonic() > deadline:
                raise TimeoutError("Sentinel did not learn its master")
            time.sleep(0.1)
        return self


class Cluster:
    """Three masters, no replicas, made with ``redis-cli --cluster create``."""

    def __init__(self, binary: str, workdir: Path, masters: int = 3) -> None:
        self.nodes = [
            RedisServer(
                binary,
                workdir,
                port=cluster_port(),
                extra=["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
            )
            for _ in range(masters)
        ]
        for node in self.nodes:
            node.extra += ["--cluster-config-file", str(node.workdir / "nodes.conf")]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=60,
            check=True,
        )
        deadline = time.monotonic() + 30
        while not all("cluster_state:ok" in node.cli("cluster", "info") for node in self.nodes):
            if time.monotonic() > deadline:
                raise TimeoutError("Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
