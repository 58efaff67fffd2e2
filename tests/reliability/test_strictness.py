"""The strictness corpus (bench/corpus/http.json) against narrows: every case gets its answer.

The same corpus and runner as ``bench/strictness.py`` (which also runs the peers); here the
server runs in-process, so after the whole corpus its connection and task counts must be
back to zero. The corpus is also fed to the sans-I/O parser whole and byte by byte: both
must end in the same events.
"""

from __future__ import annotations

import asyncio

import pytest

from bench.strictness import Case, load_corpus, run_corpus
from bench.strictness import app as corpus_app
from narrows.server.http.parser import BodyChunk, ProtocolError, RequestParser
from tests.server.http.serving import port_of, serving

CASES = load_corpus()


async def _settled(state: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if not state.connections and not state.tasks:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.05)


async def test_corpus_against_narrows() -> None:
    async with serving(corpus_app) as server:
        results = await run_corpus("127.0.0.1", port_of(server), CASES, idle=1.0)
        wrong = {
            case.id: f"expected {case.expected_from_narrows.describe()}, got {outcome.describe()}"
            for case in CASES
            if not (outcome := results[case.id]).matches(case.expected_from_narrows)
        }
        assert wrong == {}
        state = server.state
        assert state is not None
        await _settled(state)
        assert (len(state.connections), len(state.tasks)) == (0, 0)


def test_corpus_has_every_vector_the_issue_names() -> None:
    ids = {case.id for case in CASES}
    for needed in (
        "cl-te", "te-cl", "te-chunked-identity", "te-leading-space-name", "te-xchunked",
        "te-tab-ows", "te-duplicate-header", "ok-chunk-extension", "chunk-bare-lf",
        "chunk-size-overflow", "header-too-large", "header-count", "uri-too-long", "http09",
        "connect", "ok-absolute-form", "host-missing", "obs-fold", "nul-in-header-value",
        "pipeline-after-error", "method-bad-char", "slowloris",
    ):  # fmt: skip
        assert needed in ids
    groups = {case.group for case in CASES}
    assert {"smuggling", "chunked framing", "limits", "host", "pipelining"} <= groups


def _parse(case: Case, bytewise: bool) -> list[object]:
    """The parser's events, adjacent body chunks joined (their split depends on the reads)."""
    parser = RequestParser()
    data = case.request + (case.trickle.line * case.trickle.count if case.trickle else b"")
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    out: list[object] = []
    for chunk in chunks:
        for event in parser.feed(chunk):
            if isinstance(event, BodyChunk):
                if out and isinstance(out[-1], bytes):
                    out[-1] += event.data
                else:
                    out.append(event.data)
            else:
                out.append(repr(event))
    return out


@pytest.mark.parametrize("case", [c for c in CASES if len(c.request) < 4096], ids=lambda c: c.id)
def test_parser_same_events_whole_and_bytewise(case: Case) -> None:
    whole = _parse(case, bytewise=False)
    assert whole == _parse(case, bytewise=True)
    errors = [e for e in whole if isinstance(e, str) and e.startswith("ProtocolError")]
    assert len(errors) <= 1
    if errors:
        assert whole[-1] == errors[0]  # an error is always the last event


def test_parser_refusals_are_precise() -> None:
    def error(raw: bytes) -> ProtocolError:
        events = RequestParser().feed(raw)
        assert isinstance(events[-1], ProtocolError), events
        return events[-1]

    assert error(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n").status == 501
    assert error(b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n").reason == (
        "Expected a request target without a fragment, got '#'"
    )
    assert error(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n").reason == (
        "Expected asterisk-form only with OPTIONS, got GET"
    )
    refused = error(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n")
    assert (refused.status, refused.reason) == (400, "Expected a Host of host[:port], got b'a b'")
    for good in (b"a", b"a:80", b"[::1]:8000", b"", b"xn--bcher-kva.example", b"10.0.0.1:"):
        events = RequestParser().feed(b"GET / HTTP/1.1\r\nHost: " + good + b"\r\n\r\n")
        assert not any(isinstance(e, ProtocolError) for e in events), good
