"""RFC 3339 times with nanoseconds (chain.timefmt)."""

from __future__ import annotations

import pytest

from chain.errors import DecodeError
from chain.timefmt import NS_PER_SECOND, format_rfc3339_ns, parse_rfc3339_ns

T0 = 1_795_520_342  # 2026-11-24T11:39:02Z in seconds


@pytest.mark.parametrize(("text", "time_ns"), [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T00:00:00.000000001Z", 1),
    ("1969-12-31T23:59:59.999999999Z", -1),
    ("2026-11-24T11:39:02Z", T0 * NS_PER_SECOND),
    ("2026-11-24T11:39:02.123456789Z", T0 * NS_PER_SECOND + 123_456_789),
    ("2026-11-24T11:39:02.1Z", T0 * NS_PER_SECOND + 100_000_000),
    ("2026-11-24T11:39:02.000100Z", T0 * NS_PER_SECOND + 100_000),
    ("2026-11-24t11:39:02z", T0 * NS_PER_SECOND),
    ("2026-11-24T12:39:02+01:00", T0 * NS_PER_SECOND),
    ("2026-11-24T06:09:02.5-05:30", T0 * NS_PER_SECOND + 500_000_000),
    ("2026-11-24T11:39:02-00:00", T0 * NS_PER_SECOND),
    ("2026-11-25T11:38:02+23:59", T0 * NS_PER_SECOND),
    ("2024-02-29T00:00:00Z", 1_709_164_800 * NS_PER_SECOND),
    ("2000-01-01T00:00:00Z", 946_684_800 * NS_PER_SECOND),
    ("2262-04-11T23:47:16.854775807Z", 2**63 - 1),
    ("0001-01-01T00:00:00Z", -62_135_596_800 * NS_PER_SECOND),
    ("9999-12-31T23:59:59.999999999Z", 253_402_300_800 * NS_PER_SECOND - 1),
])
def test_parse(text: str, time_ns: int) -> None:
    assert parse_rfc3339_ns(text) == time_ns


@pytest.mark.parametrize(("time_ns", "text"), [
    (0, "1970-01-01T00:00:00Z"),
    (1, "1970-01-01T00:00:00.000000001Z"),
    (-1, "1969-12-31T23:59:59.999999999Z"),
    (T0 * NS_PER_SECOND, "2026-11-24T11:39:02Z"),
    (T0 * NS_PER_SECOND + 123_456_789, "2026-11-24T11:39:02.123456789Z"),
    (T0 * NS_PER_SECOND + 123_456_000, "2026-11-24T11:39:02.123456Z"),
    (T0 * NS_PER_SECOND + 100_000_000, "2026-11-24T11:39:02.1Z"),
    (T0 * NS_PER_SECOND + 10, "2026-11-24T11:39:02.00000001Z"),
    (2**63 - 1, "2262-04-11T23:47:16.854775807Z"),
    (-62_135_596_800 * NS_PER_SECOND, "0001-01-01T00:00:00Z"),
    (253_402_300_800 * NS_PER_SECOND - 1, "9999-12-31T23:59:59.999999999Z"),
])
def test_format_like_go_rfc3339nano(time_ns: int, text: str) -> None:
    assert format_rfc3339_ns(time_ns) == text
    assert parse_rfc3339_ns(text) == time_ns


@pytest.mark.parametrize("time_ns", [-62_135_596_800 * NS_PER_SECOND - 1,
                                     253_402_300_800 * NS_PER_SECOND])
def test_format_outside_years_1_to_9999(time_ns: int) -> None:
    with pytest.raises(ValueError, match="outside the years"):
        format_rfc3339_ns(time_ns)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "not an RFC 3339 time"),
    ("2026-11-24", "not an RFC 3339 time"),
    ("2026-11-24T11:39:02", "not an RFC 3339 time"),
    ("2026-11-24 11:39:02Z", "not an RFC 3339 time"),
    ("2026-11-24T11:39Z", "not an RFC 3339 time"),
    ("2026-11-24T11:39:02.Z", "not an RFC 3339 time"),
    ("2026-11-24T11:39:02,5Z", "not an RFC 3339 time"),
    ("2026-11-24T11:39:02+0100", "not an RFC 3339 time"),
    ("2026-11-24T11:39:02+01", "not an RFC 3339 time"),
    ("26-11-24T11:39:02Z", "not an RFC 3339 time"),
    ("+2026-11-24T11:39:02Z", "not an RFC 3339 time"),
    ("2026-11-24T11:39:02Z ", "not an RFC 3339 time"),
    ("2026-11-24T11:39:02Z\n", "not an RFC 3339 time"),
    ("\uff12026-11-24T11:39:02Z", "not an RFC 3339 time"),  # a full-width digit
    ("0000-01-01T00:00:00Z", "year 0000"),
    ("2026-00-24T11:39:02Z", "month 00"),
    ("2026-13-24T11:39:02Z", "month 13"),
    ("2026-11-00T11:39:02Z", "day 00 is not from 01 to 30"),
    ("2026-11-31T11:39:02Z", "day 31 is not from 01 to 30"),
    ("2026-02-29T11:39:02Z", "day 29 is not from 01 to 28 in 2026-02"),
    ("1900-02-29T11:39:02Z", "day 29 is not from 01 to 28 in 1900-02"),
    ("2026-11-24T24:00:00Z", "hour 24 is not from 00 to 23"),
    ("2026-11-24T11:60:02Z", "minute 60"),
    ("2026-12-31T23:59:60Z", "leap seconds"),
    ("2026-11-24T11:39:02.1234567890Z", "10 digits, at most 9"),
    ("2026-11-24T11:39:02+24:00", "offset \\+24:00"),
    ("2026-11-24T11:39:02-01:60", "offset -01:60"),
])
def test_parse_says_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        parse_rfc3339_ns(text)


def test_parse_refuses_non_text() -> None:
    with pytest.raises(DecodeError, match="not int"):
        parse_rfc3339_ns(0)  # type: ignore[arg-type]
