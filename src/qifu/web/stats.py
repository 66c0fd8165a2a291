"""The dashboard's county-wide figures, computed by DuckDB over the analytical copy.

SQLite needs seconds to join 240,000 entities with 400,000 reports; DuckDB scans the Parquet
copy (refreshed after each import, re-exported when stale) in tens of milliseconds. Inside a
transaction (tests) the same SQL runs over the rows fetched from the database. Every query
takes the township (its name, as in the copy) that an officer is confined to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from qifu import analytics
from qifu.analytics import sources
from qifu.engine import reference, season
from qifu.engine.contract import ENTITY_TYPES
from qifu.engine.rules import duckdb_engine
from qifu.reminders import practice

NAMES = ("registry", "reports", "reminders")
STAMP_MAX_AGE = 30.0  # seconds a dashboard may lag behind the database


@dataclass
class Progress:
    name: str
    due: int
    filed: int

    @property
    def rate(self) -> float:
        return self.filed / self.due if self.due else 0.0


def connect() -> duckdb.DuckDBPyConnection:
    data = analytics.paths(NAMES, max_age=STAMP_MAX_AGE) or {n: sources.fetch_all(n) for n in NAMES}
    return duckdb_engine.connect(data, threads=2)


def _town(town: str | None) -> tuple[str, list]:
    return (" AND g.town = ?", [town]) if town else ("", [])


def entity_counts(con, town: str | None) -> dict[str, int]:
    where, params = _town(town)
    rows = con.execute(f"SELECT entity_type, status, COUNT(*) FROM registry g WHERE TRUE{where} GROUP BY ALL",
                       params).fetchall()
    out = {"total": 0, "enterprise": 0, "individual": 0, "cooperative": 0, "active": 0}
    for typ, status, n in rows:
        out["total"] += n
        out[typ] = out.get(typ, 0) + n
        out["active"] += n if status == "active" else 0
    return out


def progress(con, year: int, town: str | None) -> dict[str, list[Progress]]:
    """Due (active, established by the year's end) and filed, by township, type and section."""
    where, params = _town(town)
    rows = con.execute(f"""
        SELECT g.town, g.entity_type, g.industry_code, COUNT(*) AS due, COUNT(r.uscc) AS filed
        FROM registry g LEFT JOIN (SELECT DISTINCT uscc FROM reports WHERE report_year = ?) r ON r.uscc = g.uscc
        WHERE g.status = 'active' AND g.established_on <= ?{where}
        GROUP BY ALL""", [year, dt.date(year, 12, 31), *params]).fetchall()
    type_labels = dict(ENTITY_TYPES)
    sections = reference.section_of_division()
    names = reference.industries()
    out: dict[str, dict[str, Progress]] = {"town": {}, "type": {}, "section": {}}
    for t, typ, code, due, filed in rows:
        c = str(code or "")
        sec = c[0] if c[:1].isalpha() else sections.get(c[:2], "")
        for key, label in (("town", t), ("type", type_labels.get(typ, typ)),
                           ("section", f"{sec} {names.get(sec, '')}".strip() or "未填行业")):
            p = out[key].setdefault(label, Progress(label, 0, 0))
            p.due += due
            p.filed += filed
    return {k: list(v.values()) for k, v in out.items()}


def filings_by_day(con, year: int, town: str | None) -> tuple[int, dict[dt.date, int]]:
    """(due, filings per local day) for ``year``'s reports. The copy holds current revisions,
    so a corrected report counts on the day of its latest revision."""
    where, params = _town(town)
    due = con.execute(f"SELECT COUNT(*) FROM registry g WHERE status = 'active' AND established_on <= ?{where}",
                      [dt.date(year, 12, 31), *params]).fetchone()[0]
    rows = con.execute(f"""
        SELECT CAST(r.filed_at AS DATE) AS d, COUNT(*) FROM reports r JOIN registry g ON g.uscc = r.uscc
        WHERE r.report_year = ? AND g.status = 'active' AND g.established_on <= ?{where} GROUP BY d""",
                       [year, dt.date(year, 12, 31), *params]).fetchall()
    return due, dict(rows)


def season_curve(con, year: int, town: str | None) -> tuple[dict, dict[int, tuple[int, dict]]]:
    """Cumulative filing rate by day of the season (1 Jan–30 Jun of year+1), this year and last."""
    days = season.days(year)
    out = {"labels": [f"{d.month}/{d.day}" for d in days], "series": {}}
    raw = {}
    for y in (year, year - 1):
        due, by_day = filings_by_day(con, y, town)
        raw[y] = (due, by_day)
        s0 = dt.date(y + 1, 1, 1)
        total = sum(n for d, n in by_day.items() if d < s0)
        series = []
        for i in range(len(days)):
            total += by_day.get(s0 + dt.timedelta(days=i), 0)
            series.append(round(100 * total / due, 2) if due else 0)
        out["series"][f"{y}年度"] = series
    return out, raw


def reminders(con, year: int, town: str | None, due: int, by_day: dict[dt.date, int]) -> dict:
    """Filing reminders of the season by channel (the contact history: imported and sent by
    qifu), and what the blanket practice would have sent up to the last contact day."""
    where, params = _town(town)
    rows = con.execute(f"""
        SELECT m.channel, COUNT(*), MAX(m.sent_at) FROM reminders m
        {'JOIN registry g ON g.uscc = m.uscc' if town else ''}
        WHERE m.purpose = 'filing' AND m.sent_at >= ? AND m.sent_at < ?{where} GROUP BY m.channel""",
                       [dt.datetime(year + 1, 1, 1), dt.datetime(year + 1, 7, 1), *params]).fetchall()
    by_channel = {c: n for c, n, _ in sorted(rows, key=lambda r: -r[1])}
    made = sum(by_channel.values())
    last = max((m for *_, m in rows), default=None)
    blanket = 0
    if last:
        for day in practice.blanket().text_days(year + 1):  # a text to every non-filer on these days
            if day <= last.date():
                blanket += due - sum(n for k, n in by_day.items() if k < day)
    return {"by_channel": by_channel, "made": made, "blanket": blanket, "saved": max(blanket - made, 0),
            "saved_pct": 100 * (blanket - made) / blanket if blanket else None}
