"""The tokens file: formats, digests, tickets, and messages that never hold a token."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from flagops.relay.tokens import TokensFileError, TokenTable

SECRET = "s3cret-token-for-shop-0001"
OTHER = "another-token-for-both-0002"


def test_yaml_and_json_files_give_the_same_table() -> None:
    yaml_text = f"""
tokens:
  - name: shop-web
    token: {SECRET}
    namespaces: [shop]
    origins: ["https://shop.example.com"]
  - sha256: {hashlib.sha256(OTHER.encode()).hexdigest()}
    namespaces: [shop, billing]
    requestsPerSecond: 5
    burst: 10
    maxStreams: 2
"""
    json_text = json.dumps(
        {
            "tokens": [
                {
                    "name": "shop-web",
                    "token": SECRET,
                    "namespaces": ["shop"],
                    "origins": ["https://shop.example.com"],
                },
                {
                    "sha256": hashlib.sha256(OTHER.encode()).hexdigest(),
                    "namespaces": ["shop", "billing"],
                    "requestsPerSecond": 5,
                    "burst": 10,
                    "maxStreams": 2,
                },
            ]
        }
    )
    for text in (yaml_text, json_text):
        table = TokenTable.parse(text)
        shop = table.lookup(SECRET)
        both = table.lookup(OTHER.encode())
        assert shop is not None and both is not None
        assert shop.name == "shop-web" and shop.sole_namespace == "shop"
        assert shop.allows_origin("https://shop.example.com")
        assert not shop.allows_origin("https://evil.example.com")
        assert both.namespaces == {"shop", "billing"} and both.sole_namespace is None
        assert (both.requests_per_second, both.burst, both.max_streams) == (5, 10, 2)
        assert both.name.startswith("token-")
        assert table.lookup("not-a-token") is None
        assert table.preflight_allows("https://shop.example.com")
        assert not table.preflight_allows("https://evil.example.com")


def test_tickets_open_one_namespace_of_one_token() -> None:
    table = TokenTable.parse(
        json.dumps({"tokens": [{"token": OTHER, "namespaces": ["shop", "billing"]}]})
    )
    entry = table.lookup(OTHER)
    assert entry is not None
    ticket = entry.ticket("shop")
    assert OTHER not in ticket
    assert table.lookup_ticket(ticket, "shop") is entry
    assert table.lookup_ticket(ticket, "billing") is None
    assert table.lookup_ticket(ticket[:-2] + "xx", "shop") is None
    assert table.lookup_ticket("nonsense", "shop") is None
    # The same file gives the same tickets: every replica accepts every other's.
    again = TokenTable.parse(
        json.dumps({"tokens": [{"token": OTHER, "namespaces": ["shop", "billing"]}]})
    )
    assert again.lookup_ticket(ticket, "shop") is not None


@pytest.mark.parametrize(
    ("tokens", "words"),
    [
        ([{"token": SECRET}], "namespaces"),
        ([{"token": SECRET, "sha256": "ab" * 32, "namespaces": ["a"]}], "exactly one"),
        ([{"token": "short-" + SECRET[:4], "namespaces": ["a"]}], "at least 16"),
        ([{"sha256": SECRET, "namespaces": ["a"]}], "64 hexadecimal"),
        ([{"token": SECRET, "namespaces": ["a"], "origins": ["https://x/"]}], "origin"),
        ([{"token": SECRET, "namespaces": ["a"], "colour": SECRET}], "colour"),
        ([{"token": SECRET, "namespaces": ["a"]}, {"token": SECRET, "namespaces": ["b"]}], "twice"),
    ],
)
def test_bad_files_are_refused_without_echoing_secrets(
    tokens: list[dict[str, object]], words: str
) -> None:
    with pytest.raises(TokensFileError) as info:
        TokenTable.parse(json.dumps({"tokens": tokens}))
    message = str(info.value)
    assert words in message
    assert SECRET not in message and SECRET[:10] not in message


def test_text_that_is_neither_json_nor_yaml_is_refused() -> None:
    with pytest.raises(TokensFileError, match="neither JSON nor YAML"):
        TokenTable.parse(f"tokens: [{SECRET}: : :")
    with pytest.raises(TokensFileError, match="mapping"):
        TokenTable.parse("- a list")


def test_the_file_is_followed_and_a_bad_version_keeps_the_tokens_in_force(
    tmp_path: Path,
) -> None:
    from flagops.relay.access import Access
    from flagops.relay.metrics import RelayMetrics
    from flagops.relay.settings import RelaySettings

    path = tmp_path / "tokens.yaml"

    def write(text: str) -> None:
        # Written aside and renamed, as kubelet swaps a mounted Secret's files.
        staging = tmp_path / "staging"
        staging.write_text(text)
        staging.replace(path)

    write(json.dumps({"tokens": [{"token": SECRET, "namespaces": ["shop"]}]}))
    metrics = RelayMetrics()
    access = Access(RelaySettings(tokens_file=path), metrics)
    access.load()
    assert access.table.lookup(SECRET) is not None
    assert access.reload_if_changed() is False  # unchanged
    write(json.dumps({"tokens": [{"token": OTHER, "namespaces": ["shop"]}]}))
    assert access.reload_if_changed() is True
    assert access.table.lookup(SECRET) is None and access.table.lookup(OTHER) is not None
    write(f"tokens: [{{token: {SECRET}, namespaces: 3}}]")
    assert access.reload_if_changed() is False
    assert access.table.lookup(OTHER) is not None, "the tokens in force stay"
    assert metrics.registry.get_sample_value("flagops_relay_token_file_errors_total") == 1
    assert metrics.registry.get_sample_value("flagops_relay_tokens") == 1
    path.unlink()
    assert access.reload_if_changed() is False
    assert access.table.lookup(OTHER) is not None
