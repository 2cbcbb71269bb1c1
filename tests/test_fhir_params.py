"""Search parameter parsing (portal/fhir/params.py, dates.py, paging.py): no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.datastructures import QueryParams

from portal.fhir import paging, params
from portal.fhir.dates import Window, window
from portal.fhir.outcome import FhirError
from portal.fhir.params import Token


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", Window()),
        ("_lastUpdated=2026", Window(_utc(2026, 1, 1), _utc(2027, 1, 1))),
        ("_lastUpdated=eq2026-02", Window(_utc(2026, 2, 1), _utc(2026, 3, 1))),
        ("_lastUpdated=eq2026-12", Window(_utc(2026, 12, 1), _utc(2027, 1, 1))),
        ("_lastUpdated=ge2026-02-28", Window(_utc(2026, 2, 28), None)),
        ("_lastUpdated=gt2026-02-28", Window(_utc(2026, 3, 1), None)),
        ("_lastUpdated=lt2026-02-28", Window(None, _utc(2026, 2, 28))),
        ("_lastUpdated=le2026-02-28", Window(None, _utc(2026, 3, 1))),
        ("_lastUpdated=ge2026-01-01T10:30Z", Window(_utc(2026, 1, 1, 10, 30), None)),
        ("_lastUpdated=gt2026-01-01T10:30Z", Window(_utc(2026, 1, 1, 10, 31), None)),
        ("_lastUpdated=le2026-01-01T10:30:05Z", Window(None, _utc(2026, 1, 1, 10, 30, 6))),
        (
            "_lastUpdated=2026-01-01T10:30:05.25Z",
            Window(_utc(2026, 1, 1, 10, 30, 5, 250000), _utc(2026, 1, 1, 10, 30, 5, 260000)),
        ),
        ("_lastUpdated=ge2026-01-01T02:00:00%2B02:00", Window(_utc(2026, 1, 1), None)),
        ("_lastUpdated=ge2026-01-01T00:00:00-05:00", Window(_utc(2026, 1, 1, 5), None)),
        (
            "_lastUpdated=ge2026-01&_lastUpdated=lt2026-03&_lastUpdated=ge2026-02",
            Window(_utc(2026, 2, 1), _utc(2026, 3, 1)),
        ),
        ("_lastUpdated=lt9999", Window(None, _utc(9999, 1, 1))),
        ("_lastUpdated=le9999", Window()),  # up to the end of time
    ],
)
def test_last_updated_windows(query: str, expected: Window) -> None:
    assert window(QueryParams(query)) == expected


def test_gt_the_last_year_matches_nothing() -> None:
    found = window(QueryParams("_lastUpdated=gt9999"))
    assert not found.contains(_utc(9999, 12, 31, 23, 59))


@pytest.mark.parametrize(
    "value",
    ["ne2026", "sa2026", "eb2026", "ap2026", "2026-13", "2026-02-30", "2026-01-01T10:00",
     "2026-01-01T25:00Z", "2026-01-01T10:00+15:00", "26", "2026-1-1", "x", "", "ge"],
)  # fmt: skip
def test_bad_dates(value: str) -> None:
    with pytest.raises(FhirError) as caught:
        window(QueryParams({"_lastUpdated": value}))
    assert caught.value.status == 400
    assert "_lastUpdated" in caught.value.diagnostics


def test_tokens_with_systems_and_escapes() -> None:
    query = QueryParams(
        [
            ("identifier", "a|b,c"),
            ("identifier", "|d"),
            ("identifier", "s|"),
            ("identifier", r"x\,y\|z"),
        ]
    )
    assert params.tokens(query, "identifier") == [
        [Token("a", "b"), Token(None, "c")],
        [Token("", "d")],
        [Token("s", "")],
        [Token(None, "x,y|z")],
    ]
    for bad in ("a|b|c", "", "|", "a,,b"):
        with pytest.raises(FhirError):
            params.tokens(QueryParams({"identifier": bad}), "identifier")


def test_check_names() -> None:
    allowed = {"identifier", "_count"}
    params.check_names(QueryParams("identifier=a&identifier=b&_count=3"), allowed)
    for query, words in [
        ("given=x", "Unknown search parameter 'given'"),
        ("identifier:exact=x", "modifiers are not supported"),
        ("_count=1&_count=2", "more than once"),
    ]:
        with pytest.raises(FhirError) as caught:
            params.check_names(QueryParams(query), allowed)
        assert words in caught.value.diagnostics


def test_count() -> None:
    assert params.count(QueryParams("")) == 50
    assert params.count(QueryParams("_count=7")) == 7
    assert params.count(QueryParams("_count=5000")) == 500
    for bad in ("0", "-3", "1.5", "ten", ""):
        with pytest.raises(FhirError):
            params.count(QueryParams({"_count": bad}))


def test_cursors_round_trip_and_refuse_others() -> None:
    cursor = paging.encode("Consent", "abc123", "ack-9")
    assert paging.decode(cursor, "Consent", 2) == ("abc123", "ack-9")
    for bad, kind, parts in [
        (cursor, "Patient", 1),
        (cursor, "Consent", 1),
        (paging.encode("Consent", "a b", "c"), "Consent", 2),
        ("not base64 at all!", "Consent", 2),
        ("", "Patient", 1),
    ]:
        with pytest.raises(FhirError):
            paging.decode(bad, kind, parts)
