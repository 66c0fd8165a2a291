"""The annual-report filing season (年报公示期): a year's report is filed from 1 January to 30 June
of the next year (《企业信息公示暂行条例》 art. 8; the same for individual businesses and
cooperatives). One calendar for the whole package: the reminders, the correction notices, the
abnormal-operation list, the statistics and the simulators all read the dates here.

Dates are the county's calendar days; a caller with a moment in time converts it to the county's
day first (Django's ``timezone.localdate``, or the first moment after a day in its zone)."""

from __future__ import annotations

import datetime as dt

OPENS = (1, 1)  # month, day of the year after the report year
CLOSES = (6, 30)


def opens(report_year: int) -> dt.date:
    """The first day to file ``report_year``'s report: 1 January of the next year."""
    return dt.date(report_year + 1, *OPENS)


def deadline(report_year: int) -> dt.date:
    """The last day to file ``report_year``'s report: 30 June of the next year."""
    return dt.date(report_year + 1, *CLOSES)


def after(report_year: int) -> dt.date:
    """The first day after the deadline: a report filed on it or later is late."""
    return deadline(report_year) + dt.timedelta(days=1)


def length(report_year: int) -> int:
    """Days from the first day of the season to its last (180, or 181 in a leap year)."""
    return (deadline(report_year) - opens(report_year)).days


def days(report_year: int) -> list[dt.date]:
    """Every day of the season, first to last."""
    return [opens(report_year) + dt.timedelta(days=i) for i in range(length(report_year) + 1)]


def filed_in(day: dt.date) -> int:
    """The report year being filed in the calendar year of ``day``: the year before."""
    return day.year - 1


def in_season(day: dt.date) -> bool:
    """Whether ``day`` lies in a filing season (1 January to 30 June)."""
    return opens(filed_in(day)) <= day <= deadline(filed_in(day))


def closed_year(today: dt.date) -> int:
    """The latest report year whose season has closed by ``today``."""
    return filed_in(today) if today > deadline(filed_in(today)) else filed_in(today) - 1
