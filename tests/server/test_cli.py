"""The ``narrows`` command: flags -> Config, and a real process serving requests."""

from __future__ import annotations

import http.client

import pytest

from narrows.server.cli import build_config, build_parser
from narrows.server.config import Config
from tests.helpers import free_port, narrows_process


def get(port: int, path: str = "/") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_serves_hello_world_as_a_process() -> None:
    port = free_port()
    with narrows_process(["-p", str(port), "tests.server.asgi_hello:app"], port=port):
        status, headers, body = get(port)
    assert status == 200
    assert body == b"Hello, world!"
    assert headers["server"] == "narrows"
    assert headers["content-length"] == "13"


def test_application_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_config([])
    assert info.value.code == 2
    assert "application" in capsys.readouterr().err


def test_defaults_are_config_defaults() -> None:
    config = build_config(["mod:app"])
    assert config == Config(application="mod:app")


def test_help_groups_options() -> None:
    text = build_parser().format_help()
    for group in ("where to listen", "TLS", "processes", "logging", "proxies", "WebSocket"):
        assert group in text


FLAGS = [
    (["-b", "0.0.0.0"], "host", "0.0.0.0"),
    (["--bind", "::1"], "host", "::1"),
    (["-p", "8001"], "port", 8001),
    (["--port", "8002"], "port", 8002),
    (["-u", "/run/d.sock"], "unix_socket", "/run/d.sock"),
    (["--unix-socket", "/run/e.sock"], "unix_socket", "/run/e.sock"),
    (["--unix_socket", "/run/f.sock"], "unix_socket", "/run/f.sock"),
    (["--fd", "0", "--fd", "3"], "file_descriptors", (0, 3)),
    (["-e", "tcp:8000", "-e", "unix:/x"], "endpoints", ("tcp:8000", "unix:/x")),
    (["--endpoint", "fd:fileno=0"], "endpoints", ("fd:fileno=0",)),
    (["--uds-permissions", "660"], "uds_permissions", 0o660),
    (["--backlog", "10"], "backlog", 10),
    (["--app-dir", "/srv"], "app_dir", "/srv"),
    (["--root-path", "/mnt"], "root_path", "/mnt"),
    (["--root_path", "/mnt2"], "root_path", "/mnt2"),
    (["--lifespan", "off"], "lifespan", "off"),
    (["--ssl-certfile", "c.pem"], "ssl_certfile", "c.pem"),
    (["--ssl-keyfile", "k.pem"], "ssl_keyfile", "k.pem"),
    (["--ssl-keyfile-password", "pw"], "ssl_keyfile_password", "pw"),
    (["--ssl-ca-certs", "ca.pem"], "ssl_ca_certs", "ca.pem"),
    (["--workers", "4"], "workers", 4),
    (["--max-requests", "1000"], "max_requests", 1000),
    (["--max-requests-jitter", "50"], "max_requests_jitter", 50),
    (["--worker-healthcheck-timeout", "5"], "worker_healthcheck_timeout", 5.0),
    (["--reload"], "reload", True),
    (["--reload-dir", "a", "--reload-dir", "b"], "reload_dirs", ("a", "b")),
    (["--loop", "asyncio"], "loop", "asyncio"),
    (["-v", "2"], "verbosity", 2),
    (["--verbosity", "0"], "verbosity", 0),
    (["--access-log", "-"], "access_log", "-"),
    (["--access_log", "/var/log/a.log"], "access_log", "/var/log/a.log"),
    (["--log-fmt", "%(message)s"], "log_fmt", "%(message)s"),
    (["--log-config", "logging.json"], "log_config", "logging.json"),
    (["--log_config", "l.ini"], "log_config", "l.ini"),
    (["--metrics-bind", "127.0.0.1:9100"], "metrics_bind", "127.0.0.1:9100"),
    (["--log_fmt", "%(levelname)s"], "log_fmt", "%(levelname)s"),
    (["-s", "myserver"], "server_name", "myserver"),
    (["--server-name", "other"], "server_name", "other"),
    (["--no-server-name"], "server_name", None),
    (["--proxy-headers"], "proxy_headers", True),
    (["--proxy-headers-host", "X-Real-IP"], "proxy_headers_host", "X-Real-IP"),
    (["--proxy_headers_port", "X-Real-Port"], "proxy_headers_port", "X-Real-Port"),
    (
        ["--forwarded-allow-ips", "10.0.0.0/8, 127.0.0.1"],
        "forwarded_allow_ips",
        ("10.0.0.0/8", "127.0.0.1"),
    ),
    (["--limit-concurrency", "100"], "limit_concurrency", 100),
    (["--max-header-size", "1000"], "max_header_size", 1000),
    (["--max-header-count", "20"], "max_header_count", 20),
    (["--max-request-line", "500"], "max_request_line", 500),
    (["--header-timeout", "3"], "header_timeout", 3.0),
    (["--keep-alive-timeout", "2.5"], "keep_alive_timeout", 2.5),
    (["-t", "60"], "http_timeout", 60.0),
    (["--http-timeout", "30"], "http_timeout", 30.0),
    (["--http_timeout", "20"], "http_timeout", 20.0),
    (["--body-timeout", "12"], "body_timeout", 12.0),
    (["--body_timeout", "off"], "body_timeout", None),
    (["--write-timeout", "15"], "write_timeout", 15.0),
    (["--application-close-timeout", "3"], "application_close_timeout", 3.0),
    (["--application_close_timeout", "4"], "application_close_timeout", 4.0),
    (["--graceful-timeout", "7"], "graceful_timeout", 7.0),
    (["--flow-control-high-water", "1024"], "flow_control_high_water", 1024),
    (["--request-body-buffer", "2048"], "request_body_buffer", 2048),
    (["--no-websocket"], "websocket", False),
    (["--websocket-max-message-size", "10"], "websocket_max_message_size", 10),
    (["--websocket-max-frame-size", "11"], "websocket_max_frame_size", 11),
    (["--websocket-max-queue", "12"], "websocket_max_queue", 12),
    (["--no-websocket-compression"], "websocket_compression", False),
    (["--ping-interval", "5"], "ping_interval", 5.0),
    (["--ping_interval", "6"], "ping_interval", 6.0),
    (["--ping-timeout", "9"], "ping_timeout", 9.0),
    (["--websocket_timeout", "-1"], "websocket_timeout", -1.0),
    (["--websocket-timeout", "100"], "websocket_timeout", 100.0),
    (["--websocket_connect_timeout", "2"], "websocket_connect_timeout", 2.0),
    (["--websocket-max-queue-bytes", "4096"], "websocket_max_queue_bytes", 4096),
    (["--websocket_max_fragments", "64"], "websocket_max_fragments", 64),
    (["--websocket-close-timeout", "2.5"], "websocket_close_timeout", 2.5),
    (["--ws-protocol", "graphql-ws", "chat"], "ws_protocols", ("graphql-ws", "chat")),
    (["--ws_protocol", "v1"], "ws_protocols", ("v1",)),
    (["--threads", "4"], "threads", 4),
]


@pytest.mark.parametrize(("argv", "field", "value"), FLAGS, ids=[" ".join(f[0]) for f in FLAGS])
def test_flag_sets_config_field(argv: list[str], field: str, value: object) -> None:
    config = build_config(["mod:app", *argv])
    assert getattr(config, field) == value


def test_every_config_field_has_a_flag() -> None:
    import dataclasses

    flagged = {field for _, field, _ in FLAGS} | {"application"}
    fields = {f.name for f in dataclasses.fields(Config)} - {"extra"}
    assert fields - flagged == set()


def test_daphne_seed_command_line() -> None:
    config = build_config(
        ["-b", "0.0.0.0", "-p", "8001", "--proxy-headers", "myproject.asgi:application"]
    )
    assert (config.host, config.port, config.proxy_headers) == ("0.0.0.0", 8001, True)
    assert config.application == "myproject.asgi:application"


def test_bad_values_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--uds-permissions", "999"], ["-p", "eighty"], ["--lifespan", "maybe"]):
        with pytest.raises(SystemExit):
            build_config([*argv, "mod:app"])
    assert "expected octal permissions" in capsys.readouterr().err


def test_bad_application_path_exits_1_with_message() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "narrows", "-p", "0", "no_such_module_xyz:app"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert 'Could not import module "no_such_module_xyz"' in proc.stderr


def test_missing_attribute_message() -> None:
    from narrows.server.app_loader import AppLoadError, load_app

    with pytest.raises(AppLoadError, match='has no attribute "nope"'):
        load_app("tests.server.asgi_hello:nope")
    with pytest.raises(AppLoadError, match=r"module\.path:attribute"):
        load_app("tests.server.asgi_hello")
    with pytest.raises(AppLoadError, match="ASGI callable, got bytes"):
        load_app("tests.server.asgi_hello:HELLO")


def test_asgi2_application_is_wrapped() -> None:
    from narrows.server.app_loader import load_app

    app = load_app("tests.server.asgi2_app:Application")
    assert callable(app)


def test_asgi2_app_served_with_asyncio_loop_and_verbosity() -> None:
    port = free_port()
    args = ["--loop", "asyncio", "-v", "2", "-p", str(port), "tests.server.asgi2_app:Application"]
    with narrows_process(args, port=port) as proc:
        status, _, body = get(port)
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert (status, body) == (200, b"asgi2")
    assert "DEBUG" in out or "Listening" in out


def test_verbosity_0_hides_info() -> None:
    port = free_port()
    with narrows_process(
        ["-v", "0", "-p", str(port), "tests.server.asgi_hello:app"], port=port
    ) as proc:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert "Listening" not in out


def test_log_fmt_is_used() -> None:
    port = free_port()
    args = [
        "--log-fmt",
        "NRW %(levelname)s %(message)s",
        "-p",
        str(port),
        "tests.server.asgi_hello:app",
    ]
    with narrows_process(args, port=port) as proc:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert f"NRW INFO Listening on http://127.0.0.1:{port}" in out


def test_server_name_flag_reaches_responses() -> None:
    port = free_port()
    with narrows_process(["-s", "edge", "-p", str(port), "tests.server.asgi_hello:app"], port=port):
        _, headers, _ = get(port)
    assert headers["server"] == "edge"
