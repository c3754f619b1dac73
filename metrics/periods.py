"""Calendar arithmetic of series and coverage: buckets (day, ISO week, month, quarter,
year) and time units as integer indexes, so a range of periods is built, counted and
shifted without a query or a loop per period."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .constants import Bucket, TimeUnit
from .selectors import entity_organization_timezone

#: Months in one bucket of each calendar-month-based kind.
_MONTHS = {Bucket.MONTH: 1, Bucket.QUARTER: 3, Bucket.YEAR: 12}


def entity_today(entity) -> date:
    """Today in the timezone of ``entity``'s organization (a user's own for a user)."""
    return datetime.now(ZoneInfo(entity_organization_timezone(entity))).date()


def bucket_index(day: date, bucket: str) -> int:
    """A number for the bucket holding ``day``; consecutive buckets differ by one."""
    if bucket == Bucket.DAY:
        return day.toordinal()
    if bucket == Bucket.WEEK:
        # Ordinal 1 (0001-01-01) is a Monday, so this counts ISO weeks.
        return (day.toordinal() - 1) // 7
    return (day.year * 12 + day.month - 1) // _MONTHS[bucket]


def bucket_from_index(index: int, bucket: str) -> date:
    """The first day of the bucket numbered ``index`` (the inverse of ``bucket_index``)."""
    if bucket == Bucket.DAY:
        return date.fromordinal(index)
    if bucket == Bucket.WEEK:
        return date.fromordinal(index * 7 + 1)
    months = index * _MONTHS[bucket]
    return date(months // 12, months % 12 + 1, 1)


def bucket_start(day: date, bucket: str) -> date:
    return bucket_from_index(bucket_index(day, bucket), bucket)


def bucket_end(start: date, bucket: str) -> date:
    """The last day of the bucket that begins on ``start``."""
    return bucket_from_index(bucket_index(start, bucket) + 1, bucket) - timedelta(days=1)


def bucket_count(start: date, end: date, bucket: str) -> int:
    """How many buckets overlap ``[start, end]``."""
    return bucket_index(end, bucket) - bucket_index(start, bucket) + 1


def bucket_starts(start: date, end: date, bucket: str) -> list[date]:
    """The first days of every bucket overlapping ``[start, end]``, in order."""
    first = bucket_index(start, bucket)
    return [bucket_from_index(i, bucket) for i in range(first, bucket_index(end, bucket) + 1)]


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months, the day clamped to the target month's length
    (March 31st minus one month is February 28th or 29th)."""
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def year_before(day: date) -> date:
    """The same calendar date a year earlier; February 29th becomes February 28th."""
    return add_months(day, -12)


def shift_buckets(day: date, bucket: str, count: int) -> date:
    """``day`` moved by ``count`` buckets, keeping its place inside the bucket (clamped to
    the month's length for month-based buckets)."""
    if bucket == Bucket.DAY:
        return day + timedelta(days=count)
    if bucket == Bucket.WEEK:
        return day + timedelta(weeks=count)
    return add_months(day, count * _MONTHS[bucket])


def shift_year(day: date, bucket: str) -> date:
    """``day`` a year earlier in the sense of ``bucket``: 52 ISO weeks for weeks (so a
    Monday stays a Monday), the same calendar date otherwise."""
    if bucket == Bucket.WEEK:
        return day - timedelta(weeks=52)
    return year_before(day)


#: A time unit of stored values is the bucket of the same name.
TIME_UNIT_BUCKET = {
    TimeUnit.DAY: Bucket.DAY,
    TimeUnit.MONTH: Bucket.MONTH,
    TimeUnit.YEAR: Bucket.YEAR,
}


def periods_between(first: date, later: date, time_unit: str) -> int:
    """Whole ``time_unit`` periods from the one holding ``first`` to the one holding
    ``later`` (0 when they are the same period)."""
    bucket = TIME_UNIT_BUCKET[time_unit]
    return bucket_index(later, bucket) - bucket_index(first, bucket)
