"""Business days in Poland, as KSeF's deadlines count them: weekends and the public holidays
of the ustawa o dniach wolnych od pracy (Christmas Eve from 2025). Shared by the KSeF sender
(an offline document's deadline) and the audit (an online one's)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

POLAND = ZoneInfo("Europe/Warsaw")


def easter(year: int) -> date:
    """Easter Sunday (the Gregorian computus, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def public_holidays(year: int) -> frozenset[date]:
    """Poland's public holidays: the fixed ones, Easter Sunday and Monday, Pentecost and
    Corpus Christi."""
    sunday = easter(year)
    fixed = [(1, 1), (1, 6), (5, 1), (5, 3), (8, 15), (11, 1), (11, 11), (12, 25), (12, 26)]
    if year >= 2025:
        fixed.append((12, 24))
    moving = [sunday, sunday + timedelta(days=1), sunday + timedelta(days=49), sunday + timedelta(days=60)]
    return frozenset([date(year, m, d) for m, d in fixed] + moving)


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in public_holidays(day.year)


def end_of_business_day_after(day: date, days: int = 1) -> datetime:
    """The end (23:59:59, Polish time) of the ``days``-th business day after ``day``, in UTC
    (``days`` 0: the end of ``day`` itself)."""
    for _ in range(max(days, 0)):
        day += timedelta(days=1)
        while not is_business_day(day):
            day += timedelta(days=1)
    return datetime.combine(day, time(23, 59, 59), POLAND).astimezone(UTC)


def end_of_next_business_day(now: datetime) -> datetime:
    """The end of the first business day after ``now``'s day in Poland, in UTC."""
    return end_of_business_day_after(now.astimezone(POLAND).date())
