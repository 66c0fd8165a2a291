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


def test_the_demo_season_draws_who_corrects_alike_in_every_process():
    """The demo is the same for the same seed: its draw does not follow a set's order, which
    differs between processes (Python hashes strings with a seed of its own per process)."""
    import os
    import subprocess
    import sys

    draw = ("import numpy as np; from qifu.demo_season import who_corrects; "
            "wrong = {f'9133028{i:011d}' for i in range(200)}; "
            "print(who_corrects(wrong, np.random.default_rng([2026, 5])))")
    got = {subprocess.run([sys.executable, "-c", draw], env=dict(os.environ, PYTHONHASHSEED=str(h)), capture_output=True,
                          text=True, check=True).stdout for h in (1, 2, 3)}
    assert len(got) == 1 and 50 < got.pop().count("9133028") < 150
