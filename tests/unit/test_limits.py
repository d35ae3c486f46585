"""The request checks of kit.limits on their own (no I/O): what a JSON body or a request head may
not hold, and where the answer points."""

from __future__ import annotations

from typing import Any

import pytest

from signalpost.kit.limits import MAX_JSON_DEPTH, RequestLimits, json_problem, read_head


@pytest.mark.parametrize(
    "body",
    [
        b'{"to":"+14155550100","text":"hello"}',
        b'{"text":"\\ud83d\\ude00 a pair is one character"}',
        b'{"n":9223372036854775807,"m":-9223372036854775808}',
        b'{"text":"a literal \\\\u0000 is not a NUL"}',
        b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH,
        b'{"digits":"12345678901234567890123"}',
        b"not json at all",  # the route answers that
        b'{"text":"caf\xc3\xa9"}',
    ],
)
def test_acceptable_bodies(body: bytes) -> None:
    assert json_problem(body) is None


@pytest.mark.parametrize(
    ("body", "code", "pointer"),
    [
        (b'{"text":"x\\ud800y"}', "10015", "/text"),
        (b'{"a":[{"b":"\\uDC00"}]}', "10015", "/a/0/b"),
        (b'{"text":"a\\u0000b"}', "10015", "/text"),
        (b'{"k\\u0000":1}', "10015", "/k\x00"),
        (b'{"a/b~":{"n":9223372036854775808}}', "10015", "/a~1b~0/n"),
        (b'{"n":-9223372036854775809}', "10015", "/n"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "10015", None),
        (b"[" * 100_000 + b"]" * 100_000, "10015", None),
        (b'{"text":"\xff"}', "10023", None),
        (b'{"text":"a"}\x00', "10023", None),
    ],
)
def test_refused_bodies(body: bytes, code: str, pointer: str | None) -> None:
    problem = json_problem(body)
    assert problem is not None
    assert (problem.status, problem.code) == (400, code)
    if pointer is not None:
        assert problem.pointer == pointer


def head_problem(scope: Any, limits: RequestLimits) -> Any:
    return read_head(scope, limits).problem


def _scope(headers: list[tuple[bytes, bytes]], path: str = "/v2/x", query: bytes = b"") -> Any:
    return {"headers": headers, "path": path, "raw_path": path.encode(), "query_string": query}


LIMITS = RequestLimits(max_header_bytes=1024, max_headers=10)


def test_head_bounds() -> None:
    assert head_problem(_scope([(b"a", b"b")] * 10), LIMITS) is None
    too_many = head_problem(_scope([(b"a", b"b")] * 11), LIMITS)
    assert too_many is not None and too_many.status == 431
    too_large = head_problem(_scope([(b"x", b"a" * 1024)]), LIMITS)
    assert too_large is not None and too_large.status == 431
    assert too_large.headers["connection"] == "close"
    long_url = head_problem(_scope([], query=b"q=" + b"a" * 1024), LIMITS)
    assert long_url is not None and long_url.status == 414


def test_nul_in_the_path_or_a_query_value() -> None:
    assert head_problem(_scope([], path="/v2/messages/\x00"), LIMITS) is not None
    problem = head_problem(_scope([], query=b"filter%5Bname%5D=a%00&x=1"), LIMITS)
    assert problem is not None and problem.parameter == "filter[name]"
    assert head_problem(_scope([], query=b"filter%5Bname%5D=a%2500"), LIMITS) is None


def test_the_body_framing_is_read_in_the_same_pass() -> None:
    head = read_head(
        _scope([(b"content-type", b"application/json; charset=utf-8"), (b"content-length", b"12")]),
        LIMITS,
    )
    assert (head.problem, head.has_body, head.length, head.is_json) == (None, True, 12, True)
    head = read_head(_scope([(b"transfer-encoding", b"chunked")]), LIMITS)
    assert (head.has_body, head.length, head.is_json) == (True, None, False)
    assert not read_head(_scope([(b"content-length", b"0")]), LIMITS).has_body
