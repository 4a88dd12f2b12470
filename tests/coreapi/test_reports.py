"""Report parameters are checked before a report costs an upstream request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.coreapi.reports import parse_instant, validate_report_query
from gateway.errors import GatewayError

GOOD = (
    "api_key=k&domain=calls&facet=tag_value&created_at_start=2024-10-25&created_at_end=2024-10-28"
)


def _fields(query: str) -> dict[str, str]:
    with pytest.raises(GatewayError) as caught:
        validate_report_query(query.encode())
    assert caught.value.status == 400
    assert caught.value.error == "invalid_request"
    assert caught.value.fields is not None
    return caught.value.fields


@pytest.mark.parametrize(
    "query",
    [
        GOOD,
        GOOD + "&tag_value_key=utm_campaign&page=2&per_page=50",
        "domain=calls&facet=daily&created_at_start=2016-01-01T00:00:00+00:00"
        "&created_at_end=2016-01-02T00:00:00+00:00",
        "domain=calls&facet=buyer&created_at_start=2016-01-01T00:00:00%2B05:00"
        "&created_at_end=2016-01-01T00:00:00Z",
        "domain=calls&facet=number&created_at_start=2022-01-01&created_at_end=2023-12-31",
    ],
)
def test_good_queries_pass(query: str) -> None:
    validate_report_query(query.encode())


def test_missing_parameters_are_each_named() -> None:
    fields = _fields("api_key=k")
    assert set(fields) == {"domain", "facet", "created_at_start", "created_at_end"}


def test_unknown_domain_and_facet() -> None:
    fields = _fields(GOOD.replace("domain=calls", "domain=numbers").replace("tag_value", "zip"))
    assert set(fields) == {"domain", "facet"}
    assert "calls" in fields["domain"]
    assert "publisher" in fields["facet"]


def test_dates_out_of_order() -> None:
    fields = _fields(GOOD.replace("2024-10-28", "2024-10-20"))
    assert fields == {"created_at_end": "must be after created_at_start"}
    assert "created_at_end" in _fields(GOOD.replace("2024-10-28", "2024-10-25"))


def test_two_years_or_more_apart_is_refused() -> None:
    base = "domain=calls&facet=daily&created_at_start=2022-01-01&created_at_end="
    assert "created_at_end" in _fields(base + "2024-01-01")
    validate_report_query((base + "2023-12-31T23:59:59Z").encode())


def test_unparseable_dates_and_pages() -> None:
    fields = _fields(GOOD.replace("2024-10-25", "yesterday") + "&page=0&per_page=x")
    assert set(fields) == {"created_at_start", "page", "per_page"}


def test_the_error_body_names_fields_but_echoes_no_values() -> None:
    with pytest.raises(GatewayError) as caught:
        validate_report_query(b"api_key=secretsecret&domain=nope")
    assert b"secretsecret" not in caught.value.body()


def test_parse_instant_reads_a_space_as_the_plus_of_an_offset() -> None:
    assert parse_instant("2016-01-01T00:00:00 05:00") == datetime(
        2016, 1, 1, tzinfo=timezone(timedelta(hours=5))
    )
    assert parse_instant("2016-01-01") == datetime(2016, 1, 1, tzinfo=UTC)
    assert parse_instant("2016-01-01T10:00:00") == datetime(2016, 1, 1, 10, tzinfo=UTC)
    assert parse_instant("2016-13-01") is None
    assert parse_instant("20160101") is None
