"""Working days in mainland China, from maintained packages, never a hand-made list:
``chinese_calendar`` (the State Council's holidays and make-up working weekends, 调休, for the
years it has: 2004–2026 in 1.11.0); for a later year, ``holidays`` (statutory holidays computed
by their rules, weekends as rest days) until the package has the year's arrangement.

A time limit of N working days is N × 24 hours of working time: only the hours that fall on
working days run the clock (a request made on Friday at 16:00 with a limit of one working day
is due on Monday at 16:00). Times are Asia/Shanghai.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = 86_400
log = logging.getLogger(__name__)


@lru_cache(maxsize=4096)
def is_workday(day: dt.date) -> bool:
    import chinese_calendar

    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return _fallback(day.year, day)


def _fallback(year: int, day: dt.date) -> bool:
    return day.weekday() < 5 and day not in _statutory(year)


@lru_cache(maxsize=16)
def _statutory(year: int):
    import holidays

    log.warning("%s 年的调休安排不在 chinese_calendar 中：按法定节假日和周末计算工作日", year)
    return holidays.China(years=year)


def _local(t: dt.datetime) -> dt.datetime:
    return t.astimezone(SHANGHAI) if t.tzinfo else t.replace(tzinfo=SHANGHAI)


def nth_after(day: dt.date, n: int) -> dt.date:
    """The ``n``-th working day after ``day`` (not counting ``day``): a limit of N working days
    from a day ends on it."""
    while n:
        day += dt.timedelta(days=1)
        n -= is_workday(day)
    return day


def nth_before(day: dt.date, n: int) -> dt.date:
    """The ``n``-th working day before ``day`` (not counting ``day``)."""
    while n:
        day -= dt.timedelta(days=1)
        n -= is_workday(day)
    return day


def working_seconds(start: dt.datetime, end: dt.datetime) -> float:
    """Seconds of working time between two instants (0 if ``end`` is not after ``start``)."""
    start, end = _local(start), _local(end)
    if end <= start:
        return 0.0
    total = 0.0
    day = start.date()
    while day <= end.date():
        if is_workday(day):
            lo = max(start, dt.datetime.combine(day, dt.time(0), SHANGHAI))
            hi = min(end, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), SHANGHAI))
            total += max((hi - lo).total_seconds(), 0.0)
        day += dt.timedelta(days=1)
    return total


def add_working(start: dt.datetime, seconds: float) -> dt.datetime:
    """The instant when ``seconds`` of working time have passed since ``start``."""
    t = _local(start)
    left = seconds
    while True:
        midnight = dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(0), SHANGHAI)
        if is_workday(t.date()):
            span = (midnight - t).total_seconds()
            if left <= span:
                return t + dt.timedelta(seconds=left)
            left -= span
        t = midnight


def due(start: dt.datetime, working_days: float) -> dt.datetime:
    return add_working(start, working_days * DAY)
