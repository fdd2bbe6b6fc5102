"""The SSE parser against the WHATWG event-stream rules, fed whole and byte by byte."""

from __future__ import annotations

import pytest

from flagops.flags.sse import SseEvent, SseParser


def _feed_all(data: bytes, *, bytewise: bool = False) -> tuple[list[SseEvent], SseParser]:
    parser = SseParser()
    events: list[SseEvent] = []
    if bytewise:
        for i in range(len(data)):
            events += parser.feed(data[i : i + 1])
    else:
        events += parser.feed(data)
    return events, parser


@pytest.fixture(params=[False, True], ids=["whole", "bytewise"])
def bytewise(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_one_event_with_id_and_type(bytewise: bool) -> None:
    events, parser = _feed_all(b"event: flags\nid: rev-1\ndata: {}\n\n", bytewise=bytewise)
    assert events == [SseEvent(data="{}", type="flags", id="rev-1")]
    assert parser.last_event_id == "rev-1"


def test_multi_line_data_joins_with_newlines(bytewise: bool) -> None:
    events, _ = _feed_all(b"data: first\ndata:second\ndata:  third\n\n", bytewise=bytewise)
    # One space after the colon is dropped, a second one is data.
    assert events == [SseEvent(data="first\nsecond\n third")]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending(newline: bytes, bytewise: bool) -> None:
    text = newline.join([b"id: 7", b"data: a", b"data: b", b"", b"data: c", b"", b""])
    events, _ = _feed_all(text, bytewise=bytewise)
    assert events == [SseEvent(data="a\nb", id="7"), SseEvent(data="c", id="7")]


def test_crlf_split_across_reads_is_one_line_end() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\r") == []
    # The LF belongs to the CR before it (no blank line yet); the next CR is the blank line.
    assert parser.feed(b"\n\r") == [SseEvent(data="x")]
    # ...and this LF belongs to that CR, not a second blank line.
    assert parser.feed(b"\ndata: y\n\n") == [SseEvent(data="y")]


def test_comments_and_unknown_fields_are_ignored(bytewise: bool) -> None:
    stream = b": keep-alive\n\n:another\nfoo: bar\ndata: d\n: inside\n\n"
    events, _ = _feed_all(stream, bytewise=bytewise)
    assert events == [SseEvent(data="d")]


def test_a_field_without_colon_has_an_empty_value() -> None:
    events, _ = _feed_all(b"data\ndata\n\n")
    assert events == [SseEvent(data="\n")]


def test_no_data_no_event_but_the_id_sticks() -> None:
    events, parser = _feed_all(b"id: 5\nevent: x\n\ndata: after\n\n")
    assert events == [SseEvent(data="after", id="5")]  # `event: x` was reset by the blank line
    assert parser.last_event_id == "5"


def test_id_with_nul_is_ignored_and_empty_id_resets() -> None:
    events, parser = _feed_all(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\nid\ndata: c\n\n")
    assert [e.id for e in events] == ["1", "1", ""]
    assert parser.last_event_id == ""


@pytest.mark.parametrize(
    ("line", "expected"),
    [(b"retry: 2500", 2500), (b"retry: 0", 0), (b"retry: 1.5", None), (b"retry: -1", None)],
)
def test_retry_only_takes_ascii_digits(line: bytes, expected: int | None) -> None:
    _, parser = _feed_all(line + b"\n\n")
    assert parser.retry_ms == expected


def test_retry_rejects_non_ascii_digits() -> None:
    _, parser = _feed_all("retry: ١٢\n\n".encode())  # Arabic-Indic digits: isdigit() is True
    assert parser.retry_ms is None


def test_a_partial_event_at_the_end_is_not_dispatched() -> None:
    parser = SseParser()
    assert parser.feed(b"data: complete\n\ndata: never finished\n") == [SseEvent(data="complete")]


def test_leading_bom_is_stripped_once() -> None:
    events, _ = _feed_all("\ufeffdata: a\n\n".encode())
    assert events == [SseEvent(data="a")]
    events, _ = _feed_all("data: \ufeffb\n\n".encode())
    assert events == [SseEvent(data="\ufeffb")]


def test_utf8_split_inside_a_character(bytewise: bool) -> None:
    events, _ = _feed_all("data: josé 用户\n\n".encode(), bytewise=bytewise)
    assert events == [SseEvent(data="josé 用户")]


def test_invalid_utf8_becomes_replacement_characters() -> None:
    events, _ = _feed_all(b"data: \xff\n\n")
    assert events == [SseEvent(data="\ufffd")]


def test_a_large_document_in_many_chunks() -> None:
    payload = "x" * 300_000
    data = f"id: big\ndata: {payload}\n\n".encode()
    parser = SseParser()
    events: list[SseEvent] = []
    for start in range(0, len(data), 4096):
        events += parser.feed(data[start : start + 4096])
    assert events == [SseEvent(data=payload, id="big")]


def test_starting_last_event_id() -> None:
    parser = SseParser(last_event_id="r0")
    assert parser.feed(b"data: a\n\n") == [SseEvent(data="a", id="r0")]
