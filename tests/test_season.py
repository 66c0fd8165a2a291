"""The filing season's calendar (``qifu.engine.season``), read by reminders, corrections, the
abnormal-operation list, the statistics and the simulators."""

import datetime as dt

import pytest

from qifu.engine import season


def test_a_years_report_is_filed_from_january_to_june_of_the_next_year():
    assert season.opens(2025) == dt.date(2026, 1, 1)
    assert season.deadline(2025) == dt.date(2026, 6, 30)
    assert season.after(2025) == dt.date(2026, 7, 1)


@pytest.mark.parametrize(("year", "days"), [(2025, 181), (2027, 182)])  # 2028 is a leap year
def test_the_season_counts_february_29th(year, days):
    got = season.days(year)
    assert len(got) == days == season.length(year) + 1
    assert got[0] == season.opens(year) and got[-1] == season.deadline(year)
    assert (dt.date(2028, 2, 29) in got) == (year == 2027)


@pytest.mark.parametrize(("day", "inside", "closed"), [
    (dt.date(2026, 1, 1), True, 2024),
    (dt.date(2026, 6, 30), True, 2024),
    (dt.date(2026, 7, 1), False, 2025),
    (dt.date(2026, 12, 31), False, 2025),
])
def test_a_day_is_in_a_season_or_after_one(day, inside, closed):
    assert season.filed_in(day) == 2025
    assert season.in_season(day) is inside
    assert season.closed_year(day) == closed
