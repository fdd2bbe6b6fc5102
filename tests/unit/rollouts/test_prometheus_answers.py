"""Every hostile shape of a Prometheus answer is refused by name (rollouts/prometheus.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from flagops.api.rollout import Verdict
from flagops.api.stages import Stage
from flagops.rollouts.analysis import analyse
from flagops.rollouts.prometheus import (
    PrometheusQueryClient,
    QueryFailed,
    parse_answer,
    read_bounded,
    sample_value,
)
from flagops.rollouts.queries import (
    DEFAULT_ERROR_RATE_QUERY,
    DEFAULT_SAMPLE_COUNT_QUERY,
    AnalysisConfig,
)


def answer(kind: str, result: Any, status: str = "success") -> bytes:
    return json.dumps({"status": status, "data": {"resultType": kind, "result": result}}).encode()


def vector(value: Any) -> bytes:
    return answer("vector", [{"metric": {}, "value": [1700000000.0, value]}])


def test_a_vector_is_its_samples() -> None:
    result = parse_answer(200, "application/json", vector("42"))
    assert [sample_value(s) for s in result] == [42.0]


def test_a_scalar_is_one_sample() -> None:
    result = parse_answer(200, "application/json", answer("scalar", [1700000000.0, "7"]))
    assert [sample_value(s) for s in result] == [7.0]


def test_an_empty_vector_is_no_data() -> None:
    assert parse_answer(200, "application/json", answer("vector", [])) == []


def test_nan_parses_as_nan() -> None:
    (sample,) = parse_answer(200, "application/json", vector("NaN"))
    value = sample_value(sample)
    assert value != value


@pytest.mark.parametrize("raw", ["+Inf", "-Inf"])
def test_infinity_is_refused(raw: str) -> None:
    (sample,) = parse_answer(200, "application/json", vector(raw))
    with pytest.raises(QueryFailed, match="not a finite number"):
        sample_value(sample)


@pytest.mark.parametrize(
    ("status", "content_type", "body", "message"),
    [
        (200, "text/html", b"<html><body>Login</body></html>", "HTML page"),
        (200, "text/plain", b"<!DOCTYPE html><html></html>", "HTML page"),
        (200, "application/json", b"{not json", "not JSON: '{not json'"),
        (200, "application/json", b"[1, 2]", "JSON that is not an object"),
        (200, "application/json", answer("string", [1700000000.0, "hello"]), "a string"),
        (200, "application/json", answer("matrix", [{"metric": {}, "values": []}]), "matrix"),
        (200, "application/json", answer("histogram", []), "unknown resultType 'histogram'"),
        (200, "application/json", answer("vector", {"a": 1}), "not a list of samples"),
        (200, "application/json", b'{"status": "success"}', "without a data object"),
        (
            400,
            "application/json",
            b'{"status":"error","errorType":"bad_data","error":"parse error"}',
            "refused the query: HTTP 400 bad_data: parse error",
        ),
        (200, "application/json", b'{"status":"error","error":"x"}', "HTTP 200 None: x"),
        (503, "text/plain", b"down", "not JSON"),
    ],
)
def test_garbage_is_refused_with_a_clear_message(
    status: int, content_type: str, body: bytes, message: str
) -> None:
    with pytest.raises(QueryFailed) as caught:
        parse_answer(status, content_type, body)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        ({"metric": {}}, "a sample without a value"),
        ({"metric": {}, "value": [1, None]}, "NoneType, not a number"),
        ({"metric": {}, "value": [1, True]}, "bool, not a number"),
        ({"metric": {}, "value": [1, "lots"]}, "'lots', not a number"),
    ],
)
def test_bad_samples_are_refused(sample: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryFailed, match=message):
        sample_value(sample)


def test_read_stops_at_the_byte_limit() -> None:
    served = 0

    def chunks() -> Iterator[bytes]:
        nonlocal served
        while True:
            served += 1
            yield b"x" * 1024

    with pytest.raises(QueryFailed, match="more than 4 KiB"):
        read_bounded(chunks(), 4 * 1024, time.monotonic() + 10)
    assert served == 5


def test_read_gives_up_at_the_deadline() -> None:
    def drip() -> Iterator[bytes]:
        while True:
            yield b"x"

    with pytest.raises(TimeoutError):
        read_bounded(drip(), 1 << 30, time.monotonic() - 1)


class _Answers(BaseHTTPRequestHandler):
    body = b""
    headers_only: dict[str, str] = {}

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        for name, value in self.headers_only.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def local_answers() -> Iterator[type[_Answers]]:
    """A loopback HTTP server the client reads real bytes from (its answer set per test)."""
    handler = type("Answers", (_Answers,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.address = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def test_client_refuses_a_declared_huge_answer_unread(local_answers: type[_Answers]) -> None:
    local_answers.body = vector("1")
    local_answers.headers_only = {"Content-Length": str(50 * 1024 * 1024)}
    client = PrometheusQueryClient(local_answers.address, timeout=2, max_bytes=1024)  # type: ignore[attr-defined]
    with pytest.raises(QueryFailed, match="more than 1 KiB; not read"):
        client.custom_query("up")


def test_client_stops_reading_an_undeclared_huge_answer(local_answers: type[_Answers]) -> None:
    local_answers.body = b'{"status":"success","data":{"resultType":"vector","result":[' + (
        b'{"metric":{},"value":[1,"1"]},' * 2000
    )
    client = PrometheusQueryClient(local_answers.address, timeout=2, max_bytes=16 * 1024)  # type: ignore[attr-defined]
    with pytest.raises(QueryFailed, match="more than 16 KiB"):
        client.custom_query("up")


def test_analysis_of_each_garbage_answer_is_error_or_inconclusive(
    local_answers: type[_Answers],
) -> None:
    config = AnalysisConfig(
        error_rate_query=DEFAULT_ERROR_RATE_QUERY,
        sample_count_query=DEFAULT_SAMPLE_COUNT_QUERY,
        error_threshold=0.05,
        min_sample_size=10,
        integration="calendar_sync",
        flag="calendar_sync",
        namespace="portal",
    )
    client = PrometheusQueryClient(local_answers.address, timeout=2)  # type: ignore[attr-defined]
    local_answers.headers_only = {}
    bodies = {
        "NaN": (vector("NaN"), Verdict.INCONCLUSIVE, "NaN"),
        "+Inf": (vector("+Inf"), Verdict.ERROR, "not a finite number"),
        "string": (answer("string", [1, "x"]), Verdict.ERROR, "a string"),
        "html": (b"<html>hi</html>", Verdict.ERROR, "HTML page"),
        "matrix": (answer("matrix", []), Verdict.ERROR, "matrix"),
        "empty": (answer("vector", []), Verdict.INCONCLUSIVE, "waiting for samples: 0 of 10"),
    }
    for name, (body, verdict, message) in bodies.items():
        local_answers.body = body
        result = analyse(
            client,
            config,
            stage=Stage.BETA,
            time_in_stage=timedelta(minutes=2),
            now=datetime.now(UTC),
            timeout=2,
        )
        assert result.verdict is verdict, name
        assert message in result.message, name
