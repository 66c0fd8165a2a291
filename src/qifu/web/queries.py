"""Read-only queries behind the staff pages. Every function takes the township a user is
confined to (None: the whole county), so isolation is part of the query."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Max, Q

from qifu.checks.models import Finding
from qifu.engine import reference
from qifu.registry.models import Entity, Township
from qifu.reminders.models import ReminderRecord
from qifu.reports.models import AnnualReport

SHANGHAI = ZoneInfo("Asia/Shanghai")
# The bureau's usual practice (annual-report.md §5): a text to every non-filer on these days.
BLANKET_DAYS = ((3, 1), (4, 15), (5, 15), (6, 1), (6, 15), (6, 25))


@dataclass
class Progress:
    name: str
    due: int
    filed: int

    @property
    def rate(self) -> float:
        return self.filed / self.due if self.due else 0.0


def latest_report_year() -> int | None:
    return AnnualReport.objects.aggregate(y=Max("report_year"))["y"]


def _entities(town: str | None):
    qs = Entity.objects.all()
    return qs.filter(town_id=town) if town else qs


def _due(year: int, town: str | None):
    """Entities that must file for ``year``: active and established by the year's end."""
    return _entities(town).filter(status="active", established_on__lte=dt.date(year, 12, 31))


def _filed(year: int, town: str | None):
    qs = AnnualReport.objects.filter(report_year=year, is_current=True, entity__status="active",
                                     entity__established_on__lte=dt.date(year, 12, 31))
    return qs.filter(entity__town_id=town) if town else qs


def progress_by(year: int, town: str | None, field: str) -> dict[str, Progress]:
    """Due and filed per value of an entity field (town_id, entity_type, industry_code)."""
    due = dict(_due(year, town).values_list(field).annotate(n=Count("uscc")))
    filed = dict(_filed(year, town).values_list(f"entity__{field}").annotate(n=Count("id")))
    return {k: Progress(str(k), due.get(k, 0), filed.get(k, 0)) for k in due}


def filing_progress(year: int, town: str | None = None) -> list[Progress]:
    by = progress_by(year, town, "town_id")
    names = dict(Township.objects.values_list("code", "name"))
    return [Progress(names[k], p.due, p.filed) for k, p in by.items()]


def progress_by_type(year: int, town: str | None) -> list[Progress]:
    labels = dict(Entity._meta.get_field("entity_type").choices)
    return [Progress(labels.get(k, k), p.due, p.filed) for k, p in progress_by(year, town, "entity_type").items()]


def progress_by_section(year: int, town: str | None) -> list[Progress]:
    """By industry section (门类), the level a leader reads."""
    sections = reference.section_of_division()
    names = reference.industries()
    out: dict[str, Progress] = {}
    for code, p in progress_by(year, town, "industry_code").items():
        c = str(code or "")
        sec = c[0] if c[:1].isalpha() else sections.get(c[:2], "")  # "C3851" or "3851"
        label = f"{sec} {names.get(sec, '')}".strip() or "未填行业"
        agg = out.setdefault(label, Progress(label, 0, 0))
        agg.due += p.due
        agg.filed += p.filed
    return sorted(out.values(), key=lambda p: -p.due)


def filings_by_day(year: int, town: str | None) -> dict[dt.date, int]:
    """First filings per local day (revision 1: a correction is not a filing)."""
    vendor = connection.vendor
    day = "date(r.filed_at, '+8 hours')" if vendor == "sqlite" else "CAST(r.filed_at AT TIME ZONE 'Asia/Shanghai' AS DATE)"
    sql = (f"SELECT {day} AS d, COUNT(*) FROM reports_annualreport r JOIN registry_entity e ON e.uscc = r.uscc "
           f"WHERE r.report_year = %s AND r.revision = 1 AND e.status = 'active' AND e.established_on <= %s"
           f"{' AND e.town_id = %s' if town else ''} GROUP BY d")
    params = [year, dt.date(year, 12, 31)] + ([town] if town else [])
    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    return {(d if isinstance(d, dt.date) else dt.date.fromisoformat(d)): n for d, n in rows}


def season_curve(year: int, town: str | None) -> dict:
    """Cumulative filing rate by day of the season (1 Jan–30 Jun of year+1), this year and last."""
    out = {"labels": [], "series": {}}
    start = dt.date(year + 1, 1, 1)
    days = [start + dt.timedelta(days=i) for i in range((dt.date(year + 1, 6, 30) - start).days + 1)]
    out["labels"] = [f"{d.month}/{d.day}" for d in days]
    for y in (year, year - 1):
        due = _due(y, town).count()
        by_day = filings_by_day(y, town)
        s0 = dt.date(y + 1, 1, 1)
        before = sum(n for d, n in by_day.items() if d < s0)
        total, series = before, []
        for i in range(len(days)):
            total += by_day.get(s0 + dt.timedelta(days=i), 0)
            series.append(round(100 * total / due, 2) if due else 0)
        out["series"][f"{y}年度"] = series
    return out


def findings_summary(year: int, town: str | None) -> dict:
    qs = Finding.objects.filter(report_year=year)
    if town:
        qs = qs.filter(entity__town_id=town)
    by_rule = list(qs.filter(status="open").values("rule_id").annotate(n=Count("id")).order_by("-n")[:15])
    by_sev = {(r["severity"], r["status"]): r["n"] for r in qs.values("severity", "status").annotate(n=Count("id"))}
    return {"by_rule": by_rule, "by_severity": by_sev}


def reminders_summary(year: int, town: str | None) -> dict:
    """Filing reminders made this season by channel (the contact history: imported from the
    bureau's earlier systems and recorded by qifu's sender), and what the blanket practice
    would have cost up to the last contact day."""
    season = (dt.datetime(year + 1, 1, 1, tzinfo=SHANGHAI), dt.datetime(year + 1, 7, 1, tzinfo=SHANGHAI))
    qs = ReminderRecord.objects.filter(purpose="filing", sent_at__gte=season[0], sent_at__lt=season[1])
    if town:
        qs = qs.filter(entity__town_id=town)
    by_channel = Counter(dict(qs.values_list("channel").annotate(n=Count("id"))))
    made = sum(by_channel.values())
    last = qs.aggregate(d=Max("sent_at"))["d"]
    blanket = 0
    if last:
        last_day = last.astimezone(SHANGHAI).date()
        due = _due(year, town).count()
        by_day = filings_by_day(year, town)
        for m, d in BLANKET_DAYS:
            day = dt.date(year + 1, m, d)
            if day <= last_day:
                blanket += due - sum(n for k, n in by_day.items() if k < day)
    return {"by_channel": dict(by_channel), "made": made, "blanket": blanket,
            "saved": max(blanket - made, 0), "saved_pct": 100 * (blanket - made) / blanket if blanket else None}


def entity_counts(town: str | None = None) -> dict[str, int]:
    return _entities(town).aggregate(
        total=Count("uscc"),
        enterprise=Count("uscc", filter=Q(entity_type="enterprise")),
        individual=Count("uscc", filter=Q(entity_type="individual")),
        cooperative=Count("uscc", filter=Q(entity_type="cooperative")),
        active=Count("uscc", filter=Q(status="active")),
    )
