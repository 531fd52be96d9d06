"""Properties of RFC 3339 nanosecond times: exact round trips, agreement with datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from chain.timefmt import NS_PER_SECOND, format_rfc3339_ns, parse_rfc3339_ns

FIRST = -62_135_596_800 * NS_PER_SECOND  # 0001-01-01T00:00:00Z
LAST = 253_402_300_800 * NS_PER_SECOND - 1  # 9999-12-31T23:59:59.999999999Z
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

times = st.integers(FIRST, LAST)


@given(times)
def test_format_then_parse_is_exact(time_ns: int) -> None:
    text = format_rfc3339_ns(time_ns)
    assert parse_rfc3339_ns(text) == time_ns
    assert text.endswith("Z")
    fraction = text[20:-1]
    assert not fraction.endswith("0")
    assert (fraction == "") == (time_ns % NS_PER_SECOND == 0)


@given(times)
def test_agrees_with_datetime_to_the_microsecond(time_ns: int) -> None:
    micros = time_ns // 1000
    moment = EPOCH + timedelta(microseconds=micros)
    assert format_rfc3339_ns(micros * 1000) == (
        moment.replace(tzinfo=None, microsecond=0).isoformat()
        + (f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else "") + "Z")


@given(st.integers(FIRST + 2 * 86_400 * NS_PER_SECOND, LAST - 2 * 86_400 * NS_PER_SECOND),
       st.integers(-(23 * 60 + 59), 23 * 60 + 59))
def test_an_offset_names_the_same_instant(time_ns: int, offset_minutes: int) -> None:
    utc = format_rfc3339_ns(time_ns)
    local = format_rfc3339_ns(time_ns + offset_minutes * 60 * NS_PER_SECOND)
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    shifted = f"{local[:-1]}{sign}{hours:02d}:{minutes:02d}"
    assert parse_rfc3339_ns(shifted) == parse_rfc3339_ns(utc) == time_ns


@given(times, st.integers(1, 9))
def test_any_fraction_width_up_to_nine_digits(time_ns: int, digits: int) -> None:
    whole = format_rfc3339_ns(time_ns - time_ns % NS_PER_SECOND)[:-1]
    fraction = f"{time_ns % NS_PER_SECOND:09d}"[:digits]
    expected = time_ns - time_ns % NS_PER_SECOND + int(fraction.ljust(9, "0"))
    assert parse_rfc3339_ns(f"{whole}.{fraction}Z") == expected
