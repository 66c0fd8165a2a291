"""The bureau's past practice, "blanket" reminders: what the holdout receives and what qifu's
contacts are counted against. Configuration, not code: ``QIFU_BLANKET_PRACTICE`` lists the
days of the season on which every entity that has not filed got a text, and the day of the
call round, e.g. ``sms:03-01,04-15,05-15,06-01,06-15,06-25;call:06-20`` (the default, Cixi's
practice before qifu as annual-report.md §4 describes it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from qifu import config

DEFAULT = "sms:03-01,04-15,05-15,06-01,06-15,06-25;call:06-20"


@dataclass(frozen=True)
class Practice:
    days: tuple[tuple[int, int, str], ...]  # (month, day, channel), in calendar order

    def on(self, season: int) -> list[tuple[dt.date, str]]:
        """The contact days of the filing season ``season`` (a calendar year), with channels."""
        return [(dt.date(season, m, d), channel) for m, d, channel in self.days]

    def channel_on(self, day: dt.date) -> str:
        """The channel of ``day``'s blanket round, or "" when there is none."""
        return next((c for m, d, c in self.days if (m, d) == (day.month, day.day)), "")

    def text_days(self, season: int) -> list[dt.date]:
        return [day for day, channel in self.on(season) if channel == "sms"]


@lru_cache(maxsize=4)
def parse(value: str) -> Practice:
    days = []
    for part in value.split(";"):
        channel, _, dates = part.strip().partition(":")
        if channel not in ("sms", "call", "email", "visit") or not dates:
            raise config.ConfigError(f"QIFU_BLANKET_PRACTICE 的“{part}”应为 渠道:月-日,月-日（渠道 sms、call、email 或 visit）")
        for md in dates.split(","):
            try:
                day = dt.date(2000, *map(int, md.strip().split("-")))  # 2000: a leap year
            except (TypeError, ValueError):
                raise config.ConfigError(f"QIFU_BLANKET_PRACTICE 中的日期“{md}”应为 月-日，如 03-01") from None
            days.append((day.month, day.day, channel))
    return Practice(tuple(sorted(days)))


def blanket() -> Practice:
    return parse(config.get("QIFU_BLANKET_PRACTICE", DEFAULT) or DEFAULT)
