"""Request targets to scope values: the remembered splits answer as the splitting does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from narrows.server.http import scope
from narrows.server.http.scope import decode_path, path_parts, split_target

_targets = st.one_of(
    st.builds(
        lambda path, query: b"/" + path + query,
        st.binary(max_size=30).map(lambda b: b.replace(b"?", b"").replace(b" ", b"%20")),
        st.sampled_from([b"", b"?", b"?a=1", b"?a=%2F&b", b"??x"]),
    ),
    st.sampled_from([b"*", b"http://example.com/p?q", b"http://x", b"", b"/%E2%82%AC", b"/%zz"]),
    st.binary(min_size=257, max_size=300).map(lambda b: b"/" + b),
)


def computed(target: bytes) -> tuple[str, bytes, bytes]:
    raw_path, query = split_target(target)
    return decode_path(raw_path), raw_path, query


@given(st.lists(_targets, max_size=6))
def test_remembered_targets_split_as_the_splitting_does(targets: list[bytes]) -> None:
    scope._PATHS.clear()
    for target in targets + targets:  # every target twice: the second from the cache
        assert path_parts(target) == computed(target)
    assert all(len(t) <= scope._PATH_LENGTH_LIMIT for t in scope._PATHS)


def test_the_cache_stays_bounded() -> None:
    scope._PATHS.clear()
    for i in range(scope._PATHS_LIMIT * 2 + 5):
        assert path_parts(b"/%d" % i) == (f"/{i}", b"/%d" % i, b"")
    assert 0 < len(scope._PATHS) <= scope._PATHS_LIMIT
