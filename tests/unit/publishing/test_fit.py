"""Leaving out the newest flags when a namespace's document does not fit (pure)."""

from __future__ import annotations

from typing import Any

from flagops.flags.document import document_from_entries, parse_document
from flagops.publishing.fit import entry_size, fit_document


def entry(note: str = "") -> dict[str, Any]:
    return {
        "enabled": True,
        "rolloutPercent": 10,
        "allowedCohorts": [],
        "startDate": None,
        "endDate": None,
        "stage": None,
        "metadata": {"note": note} if note else {},
    }


ENTRIES = {f"f{i}": entry("é" * 50 * i) for i in range(10)}  # multi-byte: sizes in bytes
ORDER = [f"f{i}" for i in range(10)]


def test_everything_fits_under_a_large_limit() -> None:
    fitted = fit_document(ENTRIES, ORDER, 10**6)
    assert fitted.omitted == ()
    assert (fitted.text, fitted.revision) == document_from_entries(ENTRIES)
    assert fitted.size == len(fitted.text.encode())


def test_the_newest_flags_are_left_out_and_the_size_is_exact() -> None:
    whole = len(document_from_entries(ENTRIES)[0].encode())
    for limit in range(whole - 2000, whole + 1, 37):
        fitted = fit_document(ENTRIES, ORDER, limit)
        assert fitted.size <= limit
        assert list(fitted.kept) + list(fitted.omitted) == ORDER
        assert set(parse_document(fitted.text)) == set(fitted.kept)
        if fitted.omitted:
            # The next flag would not have fitted: nothing was left out needlessly.
            more = {k: ENTRIES[k] for k in (*fitted.kept, fitted.omitted[0])}
            assert len(document_from_entries(more)[0].encode()) > limit


def test_one_big_old_flag_keeps_its_place_and_newer_ones_wait() -> None:
    entries = {"old": entry("x" * 3000), "new": entry()}
    fitted = fit_document(entries, ["old", "new"], len(document_from_entries(entries)[0]) - 1)
    assert fitted.kept == ("old",) and fitted.omitted == ("new",)


def test_cached_sizes_give_the_same_answer() -> None:
    sizes = {k: entry_size(k, v) for k, v in ENTRIES.items()}
    assert fit_document(ENTRIES, ORDER, 2500, sizes) == fit_document(ENTRIES, ORDER, 2500)


def test_the_limit_is_a_setting_bounded_by_the_apiserver() -> None:
    import argparse

    import pytest

    from flagops.controller.settings import add_arguments, from_args
    from flagops.publishing.fit import DEFAULT_MAX_DOCUMENT_BYTES

    def settings(*argv: str) -> int:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return from_args(parser.parse_args(list(argv))).max_document_bytes

    assert settings() == DEFAULT_MAX_DOCUMENT_BYTES == 1024 * 1024 - len("flags.json")
    assert settings("--max-document-bytes", "4096") == 4096
    with pytest.raises(ValueError, match="max-document-bytes"):
        settings("--max-document-bytes", str(2 * 1024 * 1024))
