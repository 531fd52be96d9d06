"""RFC 3339 times with nanoseconds, as CometBFT writes them, to and from integer ns.

Consensus times are integers of nanoseconds since the Unix epoch (UTC). ``datetime``
keeps only microseconds, so both directions here do the nanosecond part themselves and
use ``datetime.date`` only for the calendar. Leap seconds (``:60``) are refused, as Go's
``time.Parse`` refuses them.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from chain.errors import DecodeError

NS_PER_SECOND = 1_000_000_000
_SECONDS_PER_DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MAX_FRACTION_DIGITS = 9

# ASCII digits only: ``\d`` would also match other scripts' digits.
_RFC3339 = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<offset_hour>[0-9]{2}):(?P<offset_minute>[0-9]{2}))"
)


def parse_rfc3339_ns(text: str) -> int:
    """Nanoseconds since 1970-01-01T00:00:00Z of an RFC 3339 date-time.

    Accepts ``YYYY-MM-DDTHH:MM:SS``, an optional fraction of 1 to 9 digits, and ``Z``
    or a ``±HH:MM`` offset (``T`` and ``Z`` in either case, as RFC 3339 allows). The
    result is exact and may be negative for times before 1970. Raises DecodeError
    saying which part is wrong.
    """
    if not isinstance(text, str):
        raise DecodeError(f"a time is text, not {type(text).__name__}")
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise DecodeError(f"{text!r} is not an RFC 3339 time like 2026-11-24T11:39:02.123456789Z")
    year, month, day = (int(match[name]) for name in ("year", "month", "day"))
    hour, minute, second = (int(match[name]) for name in ("hour", "minute", "second"))
    if year == 0:
        raise DecodeError(f"{text!r}: year 0000 is not supported")
    if not 1 <= month <= 12:
        raise DecodeError(f"{text!r}: month {month:02d} is not from 01 to 12")
    days_in_month = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days_in_month:
        raise DecodeError(f"{text!r}: day {day:02d} is not from 01 to {days_in_month} "
                          f"in {year:04d}-{month:02d}")
    if hour > 23:
        raise DecodeError(f"{text!r}: hour {hour:02d} is not from 00 to 23")
    if minute > 59:
        raise DecodeError(f"{text!r}: minute {minute:02d} is not from 00 to 59")
    if second > 59:
        raise DecodeError(f"{text!r}: second {second:02d} is not from 00 to 59 (leap seconds are "
                          "not supported)")
    fraction = match["fraction"] or ""
    if len(fraction) > _MAX_FRACTION_DIGITS:
        raise DecodeError(f"{text!r}: fraction of a second has {len(fraction)} digits, at "
                          f"most {_MAX_FRACTION_DIGITS} (nanoseconds)")
    offset = 0
    if match["utc"] is None:
        offset_hour, offset_minute = int(match["offset_hour"]), int(match["offset_minute"])
        if offset_hour > 23 or offset_minute > 59:
            raise DecodeError(f"{text!r}: offset {match['sign']}{offset_hour:02d}:"
                              f"{offset_minute:02d} is not within ±23:59")
        offset = (offset_hour * 3600 + offset_minute * 60) * (1 if match["sign"] == "+" else -1)
    days = date(year, month, day).toordinal() - _EPOCH_ORDINAL
    seconds = days * _SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset
    return seconds * NS_PER_SECOND + int(fraction.ljust(_MAX_FRACTION_DIGITS, "0"))


def format_rfc3339_ns(time_ns: int) -> str:
    """``time_ns`` (ns since the Unix epoch) in UTC as CometBFT and Go's RFC3339Nano
    write it: ``2026-11-24T11:39:02.123456789Z``, trailing zeros of the fraction
    trimmed, no fraction at all on a whole second.

    Raises ValueError if the time falls outside the years 0001 to 9999.
    """
    seconds, nanos = divmod(time_ns, NS_PER_SECOND)
    days, second_of_day = divmod(seconds, _SECONDS_PER_DAY)
    ordinal = _EPOCH_ORDINAL + days
    if not date.min.toordinal() <= ordinal <= date.max.toordinal():
        raise ValueError(f"time {time_ns} ns is outside the years 0001 to 9999")
    hour, rest = divmod(second_of_day, 3600)
    minute, second = divmod(rest, 60)
    fraction = f"{nanos:09d}".rstrip("0")
    return (f"{date.fromordinal(ordinal).isoformat()}T{hour:02d}:{minute:02d}:{second:02d}"
            + (f".{fraction}" if fraction else "") + "Z")
