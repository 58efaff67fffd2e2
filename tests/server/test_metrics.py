"""``--metrics-bind``: Prometheus metrics and /healthz on a listener of their own, scraped
while real clients send traffic, in one process and under ``--workers``."""

from __future__ import annotations

import http.client
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from websockets.sync.client import connect

from narrows.server.config import Config
from narrows.server.metrics import status_class
from narrows.server.metrics_export import MetricsError, parse_bind
from tests.deploy import harness
from tests.helpers import free_port, narrows_process, wait_for_port

APP = "tests.server.metrics_app:app"
SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$", re.M)


def scrape(port: int) -> dict[str, float]:
    """``{'name{label="v",...}': value}`` of the narrows_ samples (labels sorted)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/plain")
        text = response.read().decode()
    samples = {}
    for m in SAMPLE.finditer(text):
        if m["name"].startswith("narrows_") and not m["name"].endswith("_created"):
            labels = ",".join(sorted((m["labels"] or "").split(","))) if m["labels"] else ""
            samples[f"{m['name']}{{{labels}}}" if labels else m["name"]] = float(m["value"])
    return samples


def health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def request(port: int, method: str, path: str, body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def settled(port: int, key: str, value: float, timeout: float = 10) -> dict[str, float]:
    """Scrape until ``key`` reaches ``value`` (tallies are exported once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        if samples.get(key) == value or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


@contextmanager
def served(*extra: str) -> Iterator[tuple[int, int]]:
    port, metrics = free_port(), free_port()
    args = ["-p", str(port), "--metrics-bind", f"127.0.0.1:{metrics}", *extra, APP]
    with narrows_process(args, port=port):
        wait_for_port(metrics)
        yield port, metrics


def test_one_process_counts_every_kind_of_traffic_while_scraped() -> None:
    with served("--limit-concurrency", "1") as (port, metrics):
        assert health(metrics) == 200
        stop = threading.Event()
        sent = []

        def traffic() -> None:  # keeps going while the test scrapes
            while not stop.is_set():
                sent.append(request(port, "GET", "/"))

        thread = threading.Thread(target=traffic)
        thread.start()
        seen = []
        for _ in range(5):
            seen.append(
                scrape(metrics).get('narrows_http_requests_total{method="GET",status="2xx"}', 0)
            )
            time.sleep(0.3)
        deadline = time.monotonic() + 15  # tallies are exported once a second
        while seen[-1] == 0 and time.monotonic() < deadline:
            seen.append(
                scrape(metrics).get('narrows_http_requests_total{method="GET",status="2xx"}', 0)
            )
            time.sleep(0.3)
        stop.set()
        thread.join(30)
        assert seen == sorted(seen) and seen[-1] > 0, seen  # counts grow during traffic

        assert request(port, "POST", "/echo", b"x" * 1000) == 200
        assert request(port, "GET", "/missing") == 404
        assert request(port, "PATCH", "/") == 200
        # a method outside the common nine (WebDAV's) is counted as "other"
        assert request(port, "PROPFIND", "/") == 200
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            for text in ("one", "two", "three"):
                ws.send(text)
                assert ws.recv(timeout=10) == text
            ws.send(b"\x00" * 10)
            ws.recv(timeout=10)
            open_now = settled(metrics, "narrows_websocket_connections_open", 1)
            assert open_now["narrows_websocket_connections_open"] == 1
        # A slow request holds the one --limit-concurrency slot: the next is refused.
        slow = threading.Thread(target=request, args=(port, "GET", "/slow?s=5"))
        slow.start()
        in_flight = settled(metrics, "narrows_http_requests_in_flight", 1)
        assert in_flight["narrows_http_requests_in_flight"] == 1
        assert request(port, "GET", "/") == 503
        slow.join(30)
        samples = settled(metrics, "narrows_http_requests_in_flight", 0)
        samples = settled(metrics, "narrows_http_requests_refused_total", 1)

    assert samples['narrows_http_requests_total{method="GET",status="2xx"}'] == len(sent) + 1
    assert samples['narrows_http_requests_total{method="GET",status="4xx"}'] == 1
    assert samples['narrows_http_requests_total{method="POST",status="2xx"}'] == 1
    assert samples['narrows_http_requests_total{method="PATCH",status="2xx"}'] == 1
    assert samples['narrows_http_requests_total{method="other",status="2xx"}'] == 1
    assert samples["narrows_http_requests_refused_total"] == 1
    assert (
        samples['narrows_http_request_duration_seconds_count{method="GET",status="2xx"}']
        == len(sent) + 1
    )
    slow_bucket = 'narrows_http_request_duration_seconds_bucket{le="1.0",method="GET",status="2xx"}'
    assert samples[slow_bucket] == len(sent)  # the 5 s request is above the 1 s bucket
    assert samples['narrows_bytes_total{direction="in",protocol="http"}'] == 1000
    assert samples['narrows_websocket_messages_total{direction="in"}'] == 4
    assert samples['narrows_websocket_messages_total{direction="out"}'] == 4
    assert samples['narrows_bytes_total{direction="in",protocol="websocket"}'] == 3 + 3 + 5 + 10
    assert samples["narrows_websocket_connections_open"] == 0


def test_channel_layer_messages_are_counted() -> None:
    with served() as (port, metrics):
        for _ in range(3):
            assert request(port, "GET", "/layer") == 200
        key = (
            "narrows_channel_layer_messages_total"
            '{direction="received",layer="InMemoryChannelLayer"}'
        )
        samples = settled(metrics, key, 3)
    assert samples[key] == 3
    sent = 'narrows_channel_layer_messages_total{direction="sent",layer="InMemoryChannelLayer"}'
    assert samples[sent] == 6  # 3 sends and 3 group_sends (to an empty group)


def test_healthz_fails_while_the_event_loop_is_blocked() -> None:
    with served() as (port, metrics):
        blocker = threading.Thread(target=request, args=(port, "GET", "/block?s=4"))
        blocker.start()
        # 503 once the blocked loop has not answered for 2 s (the block lasts 4 s)
        harness.wait_until(lambda: health(metrics) == 503, 15, "health 503 while blocked")
        blocker.join(30)
        assert health(metrics) == 200


def test_workers_add_up_and_a_killed_worker_keeps_its_counts(tmp_path: object) -> None:
    port, metrics = free_port(), free_port()
    args = harness.narrows("-p", str(port), "--workers", "2", "--metrics-bind",
                           f"127.0.0.1:{metrics}", APP)  # fmt: skip
    with harness.started(args, cwd=harness.ROOT, log=tmp_path / "narrows.log",  # type: ignore[operator]
                         ready=lambda: wait_for_port(port)) as proc:  # fmt: skip
        wait_for_port(metrics)
        harness.wait_until(lambda: scrape(metrics).get("narrows_workers") == 2, 60, "2 workers")
        answered: Counter[int] = Counter()
        for _ in range(40):  # a new connection each
            status, body = harness.get(port, "/pid")
            assert status == 200
            answered[int(body)] += 1
        key = 'narrows_http_requests_total{method="GET",status="2xx"}'
        assert settled(metrics, key, 40)[key] == 40
        assert set(answered) <= set(harness.children_of(proc.pid))
        victim, its_share = answered.most_common(1)[0]
        harness.os.kill(victim, signal.SIGKILL)
        died = 'narrows_worker_restarts_total{reason="died"}'
        harness.wait_until(lambda: scrape(metrics).get(died) == 1, 30, "the restart counted")
        harness.wait_until(
            lambda: scrape(metrics).get("narrows_workers") == 2, 60, "2 workers again"
        )
        for _ in range(10):
            assert request(port, "GET", "/") == 200
        samples = settled(metrics, key, 50)
        assert health(metrics) == 200
    assert its_share > 0
    assert samples[key] == 50  # the killed worker's share of the first 40 is still counted


def test_metrics_never_share_the_application_port() -> None:
    with pytest.raises(MetricsError, match="the application's port"):
        parse_bind("127.0.0.1:8000", Config())
    with pytest.raises(MetricsError, match="the application's port"):
        parse_bind("0.0.0.0:9000", Config(port=9000))
    with pytest.raises(MetricsError, match="expects HOST:PORT"):
        parse_bind("localhost:metrics", Config())
    assert parse_bind("9100", Config()) == ("127.0.0.1", 9100)
    assert parse_bind("[::1]:9100", Config()) == ("::1", 9100)
    assert parse_bind("0.0.0.0:9100", Config(port=8001)) == ("0.0.0.0", 9100)


def test_status_classes() -> None:
    assert [status_class(s) for s in (101, 204, 302, 404, 503, 0)] == [
        "1xx", "2xx", "3xx", "4xx", "5xx", "5xx",
    ]  # fmt: skip


def test_batched_durations_expose_what_observe_would() -> None:
    from bisect import bisect_left

    from prometheus_client import generate_latest

    from narrows.server.metrics_export import Instruments

    durations = [0.0004, 0.001, 0.003, 0.02, 0.7, 3.0, 12.0, 0.0]
    batched, observed = Instruments(), Instruments()
    counts = [0] * len(batched.duration_bounds())
    for seconds in durations:
        counts[bisect_left(batched.duration_bounds(), seconds)] += 1
        observed.durations.labels("GET", "2xx").observe(seconds)
    batched.add_durations("GET", "2xx", sum(durations), counts)

    def exposed(instruments: Instruments) -> list[str]:
        text = generate_latest(instruments.registry).decode()
        return [line for line in text.splitlines() if "duration" in line and "_created" not in line]

    assert exposed(batched) == exposed(observed)
