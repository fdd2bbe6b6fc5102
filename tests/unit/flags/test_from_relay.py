"""FeatureFlags.from_relay against FakeRelay, a stand-in for the relay's document stream.

The integration suite runs the same client against the real relay and operator.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_relay import FakeRelay, Refusal
from prometheus_client import CollectorRegistry, generate_latest

from flagops.flags import Backoff, FeatureFlags, build_document

TOKEN = "flg_tok_PLANTED-7f3a9c-do-not-log"
PREFIX = "/namespaces/shop"
KEY = "calendar_sync"
DEADLINE = 10.0


def doc(percent: int, **extra: Any) -> tuple[str, str]:
    flags: dict[str, Any] = {KEY: {"enabled": True, "rolloutPercent": percent}}
    flags.update({k: {"enabled": bool(v), "rolloutPercent": 100} for k, v in extra.items()})
    return build_document(flags)


class RecordingSleep:
    """The relay source's `sleep=`: records every requested wait, waits at most `cap`."""

    def __init__(self, cap: float = 0.02) -> None:
        self.waits: list[float] = []
        self._cap = cap
        self._wake = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._wake.wait(min(seconds, self._cap))


@pytest.fixture
def relay() -> Iterator[FakeRelay]:
    text, _ = doc(25)
    with FakeRelay(TOKEN, PREFIX, document=text) as server:
        yield server


@pytest.fixture
def make_relay_client(
    registry: CollectorRegistry,
) -> Iterator[Callable[..., FeatureFlags]]:
    made: list[FeatureFlags] = []

    def make(url: str, **kwargs: Any) -> FeatureFlags:
        kwargs.setdefault("registry", registry)
        kwargs.setdefault("token", TOKEN)
        kwargs.setdefault("backoff", Backoff(initial=0.05, cap=0.4, rng=lambda: 1.0))
        kwargs.setdefault("ready_timeout", DEADLINE)
        client = FeatureFlags.from_relay(url, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _sample(registry: CollectorRegistry, name: str, label: str) -> float:
    return registry.get_sample_value(name, {"path": label}) or 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the stream ---------------------------------------------------------------------------


def test_initial_load_from_a_prefixed_url(
    relay: FakeRelay, make_relay_client: Callable[..., FeatureFlags], registry: CollectorRegistry
) -> None:
    _, revision = doc(25)
    flags = make_relay_client(relay.url)
    # from_relay waited for the first event: the document is in use on return.
    assert flags.revision == revision
    assert flags.keys() == [KEY]
    assert flags.relay_url == relay.url
    assert flags.path is None
    request = relay.requests[0]
    assert request["Authorization"] == "<present>"
    assert request["Accept"] == "text/event-stream"
    assert _sample(registry, "flagops_flags_relay_connected", relay.url) == 1
    assert flags.relay_connected is True
    assert _sample(registry, "flagops_flags_reloads_total", relay.url) == 1


def test_a_pushed_change_is_taken(
    relay: FakeRelay, make_relay_client: Callable[..., FeatureFlags], wait_for: Any
) -> None:
    flags = make_relay_client(relay.url)
    user = next(u for u in (f"u{i}" for i in range(1000)) if not flags.is_enabled(KEY, u))
    text, revision = doc(100)
    relay.publish(text)
    wait_for(lambda: flags.revision == revision, timeout=DEADLINE, message="pushed revision")
    assert flags.is_enabled(KEY, user) is True
    assert relay.connections == 1  # taken on the open stream, no reconnect


def test_a_document_sent_as_several_data_lines(
    make_relay_client: Callable[..., FeatureFlags],
) -> None:
    text, revision = doc(40, other=True)
    with FakeRelay(TOKEN, document=text, split_lines=True) as server:
        flags = make_relay_client(server.url)
        assert flags.revision == revision
        assert flags.is_enabled("other") is True


def test_drop_reconnects_with_back_off_and_catches_up(
    relay: FakeRelay,
    make_relay_client: Callable[..., FeatureFlags],
    registry: CollectorRegistry,
    wait_for: Any,
) -> None:
    sleep = RecordingSleep()
    flags = make_relay_client(relay.url, sleep=sleep)
    port = relay.port
    relay.stop()  # streams dropped and connections refused: the relay is down
    wait_for(lambda: len(sleep.waits) >= 4, timeout=DEADLINE, message="four retries")
    assert flags.revision == doc(25)[1]  # the last good state stays in use
    assert _sample(registry, "flagops_flags_relay_connected", relay.url) == 0
    assert flags.relay_connected is False
    # While down: a change the app has not seen.
    text, revision = doc(75)
    back = FakeRelay(TOKEN, PREFIX, document=text, port=port).start()
    try:
        wait_for(lambda: flags.revision == revision, timeout=DEADLINE, message="catch-up")
        waits_while_down = list(sleep.waits)
        # Capped exponential (rng=1.0 gives each ceiling): 0.05, 0.1, 0.2, 0.4, 0.4, ...
        assert waits_while_down[:4] == [0.05, 0.1, 0.2, 0.4]
        assert all(w == 0.4 for w in waits_while_down[4:])
        assert _sample(registry, "flagops_flags_relay_reconnects_total", relay.url) >= 4
        assert _sample(registry, "flagops_flags_relay_connected", relay.url) == 1
        # A stream that delivered data resets the back-off: the next drop starts at 0.05.
        count = len(sleep.waits)
        back.drop()
        wait_for(lambda: len(sleep.waits) > count, timeout=DEADLINE, message="retry after drop")
        assert sleep.waits[count] == 0.05
    finally:
        back.stop()


def test_malformed_event_keeps_the_last_good_state(
    relay: FakeRelay,
    make_relay_client: Callable[..., FeatureFlags],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
    wait_for: Any,
) -> None:
    caplog.set_level(logging.WARNING, logger="flagops.flags")
    flags = make_relay_client(relay.url)
    good = flags.revision
    relay.send_raw(b'id: x\ndata: {"schema": 1, "flags": {"k": SECRET-ISH\n\n')
    wait_for(
        lambda: _sample(registry, "flagops_flags_reload_errors_total", relay.url) == 1,
        timeout=DEADLINE,
        message="malformed event counted",
    )
    assert flags.revision == good
    assert flags.is_enabled(KEY, default=True) is False  # still the good document's flag
    assert any("not valid JSON" in r.getMessage() for r in caplog.records)
    assert all("SECRET" not in r.getMessage() for r in caplog.records)
    # A document whose revision does not match its flags is refused the same way.
    relay.send_raw(b'data: {"schema":1,"revision":"abc","flags":{}}\n\n')
    wait_for(
        lambda: _sample(registry, "flagops_flags_reload_errors_total", relay.url) == 2,
        timeout=DEADLINE,
        message="revision mismatch counted",
    )
    assert flags.revision == good
    # The stream stays open and the next good document is taken.
    text, revision = doc(60)
    relay.publish(text)
    wait_for(lambda: flags.revision == revision, timeout=DEADLINE, message="good after bad")
    assert relay.connections == 1


def test_fallback_file_while_the_relay_is_down(
    volume: Any,
    make_relay_client: Callable[..., FeatureFlags],
    flag_state: Callable[..., dict[str, Any]],
    wait_for: Any,
) -> None:
    port = _free_port()
    mounted = volume.write_flags({KEY: flag_state(10)})
    flags = make_relay_client(
        f"http://127.0.0.1:{port}{PREFIX}",
        fallback_path=volume.root,
        sleep=RecordingSleep(),
        ready_timeout=0.0,
    )
    assert flags.path == volume.root / "flags.json"
    assert flags.revision == mounted  # from the file, before the relay was even tried
    # kubelet updates the mount while the relay is unreachable: followed.
    newer = volume.write_flags({KEY: flag_state(20)})
    wait_for(lambda: flags.revision == newer, timeout=DEADLINE, message="file followed")

    text, from_relay = doc(30)
    with FakeRelay(TOKEN, PREFIX, document=text, port=port) as server:
        wait_for(lambda: flags.revision == from_relay, timeout=DEADLINE, message="relay up")
        # While the stream is open the relay alone decides: a (late) mount update is ignored.
        volume.write_flags({KEY: flag_state(5)})
        assert flags.reload() is False
        assert flags.revision == from_relay
        server.stop()
        wait_for(lambda: server.open_streams() == 0, timeout=DEADLINE, message="stream gone")
    # Relay down again: the relay's state stays (it is newer than what the mount showed) ...
    assert flags.revision == from_relay
    # ... until the mount changes after the drop.
    latest = volume.write_flags({KEY: flag_state(50)})
    wait_for(lambda: flags.revision == latest, timeout=DEADLINE, message="file after drop")


def test_no_relay_and_no_fallback_means_defaults(
    make_relay_client: Callable[..., FeatureFlags], registry: CollectorRegistry
) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    flags = make_relay_client(url, sleep=RecordingSleep())
    # from_relay returned after the first attempt failed, and never raised.
    assert flags.revision is None
    assert flags.is_enabled(KEY, "u", default=True) is True
    assert _sample(registry, "flagops_flags_relay_connected", url) == 0


def test_refusals_are_retried_and_retry_after_is_honoured(
    relay: FakeRelay,
    make_relay_client: Callable[..., FeatureFlags],
    caplog: pytest.LogCaptureFixture,
    wait_for: Any,
) -> None:
    caplog.set_level(logging.INFO, logger="flagops.flags")
    relay.refusals = [Refusal(429, retry_after="3"), Refusal(503)]
    sleep = RecordingSleep()
    flags = make_relay_client(relay.url, sleep=sleep)
    wait_for(lambda: flags.revision == doc(25)[1], timeout=DEADLINE, message="third attempt")
    assert sleep.waits[:2] == [3.0, 0.1]  # Retry-After over the back-off, then the back-off
    messages = [r.getMessage() for r in caplog.records]
    assert any("429" in m for m in messages)
    assert any("503" in m for m in messages)
    assert any("stream open again" in m for m in messages)


def test_wrong_token_is_reported_and_retried_without_the_token(
    relay: FakeRelay,
    make_relay_client: Callable[..., FeatureFlags],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
    wait_for: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    relay.token = "the-right-one"
    sleep = RecordingSleep()
    flags = make_relay_client(relay.url, sleep=sleep)
    wait_for(lambda: len(sleep.waits) >= 3, timeout=DEADLINE, message="retries")
    assert flags.revision is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings.count(warnings[0]) == 1  # one warning for a repeated problem, not one per try
    assert "refused the token (401" in warnings[0]
    relay.token = TOKEN  # the platform team fixes the token's scope
    wait_for(lambda: flags.revision is not None, timeout=DEADLINE, message="accepted")


def test_token_file_is_read_on_each_connect(
    relay: FakeRelay,
    make_relay_client: Callable[..., FeatureFlags],
    tmp_path: Path,
    wait_for: Any,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("stale\n")
    flags = make_relay_client(relay.url, token=None, token_file=token_file, sleep=RecordingSleep())
    assert flags.revision is None
    token_file.write_text(TOKEN + "\n")  # the mounted Secret rotates
    wait_for(lambda: flags.revision is not None, timeout=DEADLINE, message="rotated token")


def test_a_silent_stream_is_abandoned_after_the_read_timeout(
    relay: FakeRelay,
    make_relay_client: Callable[..., FeatureFlags],
    caplog: pytest.LogCaptureFixture,
    wait_for: Any,
) -> None:
    caplog.set_level(logging.WARNING, logger="flagops.flags")
    relay.silent = True
    flags = make_relay_client(
        relay.url, read_timeout=0.2, ready_timeout=0.0, sleep=RecordingSleep()
    )
    wait_for(lambda: relay.connections >= 2, timeout=DEADLINE, message="reconnect after silence")
    assert any("no data for 0.2 s" in r.getMessage() for r in caplog.records)
    relay.silent = False
    wait_for(lambda: flags.revision is not None, timeout=DEADLINE, message="talking again")


def test_the_token_never_reaches_a_log_line_or_metric(
    make_relay_client: Callable[..., FeatureFlags],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
    wait_for: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    text, _ = doc(25)
    with FakeRelay(TOKEN, PREFIX, document=text) as server:
        server.refusals = [Refusal(500), Refusal(403)]
        sleep = RecordingSleep()
        flags = make_relay_client(server.url, sleep=sleep)
        wait_for(lambda: flags.revision is not None, timeout=DEADLINE, message="loaded")
        server.send_raw(b"data: not json\n\n")
        server.drop()
        wait_for(lambda: server.connections >= 2, timeout=DEADLINE, message="reconnected")
        server.stop()
        wait_for(lambda: len(sleep.waits) >= 5, timeout=DEADLINE, message="retries while down")
        flags.close()
    logged = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.args!r} {r.__dict__!r}" for r in caplog.records
    )
    assert "relay" in logged  # the scenario did log
    assert TOKEN not in logged
    assert TOKEN not in generate_latest(registry).decode()
    assert TOKEN not in repr(flags) and TOKEN not in repr(vars(flags))


def test_close_ends_the_thread_even_mid_request(
    make_relay_client: Callable[..., FeatureFlags],
) -> None:
    # A peer that accepts the connection and never answers: the client blocks reading.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        flags = make_relay_client(
            f"http://127.0.0.1:{port}", connect_timeout=600, ready_timeout=0.0
        )
        conn, _ = listener.accept()
        with contextlib.closing(conn):
            flags.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("flagops-flags-relay")]


def test_context_manager_stops_the_stream(relay: FakeRelay, registry: CollectorRegistry) -> None:
    with FeatureFlags.from_relay(relay.url, token=TOKEN, registry=registry) as flags:
        assert flags.revision is not None
        assert relay.open_streams() == 1
    assert not [t for t in threading.enumerate() if t.name.startswith("flagops-flags-relay")]
    assert flags.is_enabled(KEY, default=True) in (True, False)  # still answers after close


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://relay", "http(s)://"),
        ("relay:8080", "http(s)://"),
        ("http://user:hunter2@relay", "credentials"),
        ("http://relay/ns?token=hunter2", "query"),
        ("http://relay:99999", "not a valid URL"),
    ],
)
def test_bad_urls_are_refused_without_echoing_them(
    url: str, words: str, registry: CollectorRegistry
) -> None:
    with pytest.raises(ValueError, match="relay URL") as caught:
        FeatureFlags.from_relay(url, registry=registry)
    assert words in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_token_and_token_file_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        FeatureFlags.from_relay("http://relay", token="a", token_file=tmp_path / "t")


def test_a_token_that_is_no_header_text_is_refused_unquoted(
    relay: FakeRelay,
    make_relay_client: Callable[..., FeatureFlags],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ValueError, match="printable ASCII") as caught:
        FeatureFlags.from_relay(relay.url, token="secret\nX-Injected: 1")
    assert "secret" not in str(caught.value)
    # From a file the check runs at each connect: reported (unquoted) and retried.
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token"
    token_file.write_text("secret with spaces")
    flags = make_relay_client(relay.url, token=None, token_file=token_file, sleep=RecordingSleep())
    assert flags.revision is None
    assert any("printable ASCII" in r.getMessage() for r in caplog.records)
    assert all("secret" not in r.getMessage() for r in caplog.records)
    assert relay.requests == []
