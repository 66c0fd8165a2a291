"""Read-only database queries behind the staff pages (the county-wide figures are in
``stats``). Each takes the township a user is confined to (None: the whole county)."""

from __future__ import annotations

from django.db.models import Count, Max

from qifu.checks.models import Finding
from qifu.reports.models import AnnualReport


def latest_report_year() -> int | None:
    return AnnualReport.objects.aggregate(y=Max("report_year"))["y"]


def findings_summary(year: int, town: str | None) -> dict:
    qs = Finding.objects.filter(report_year=year)
    if town:
        qs = qs.filter(entity__town_id=town)
    by_rule = list(qs.filter(status="open").values("rule_id").annotate(n=Count("id")).order_by("-n")[:15])
    by_sev = {(r["severity"], r["status"]): r["n"] for r in qs.values("severity", "status").annotate(n=Count("id"))}
    return {"by_rule": by_rule, "by_severity": by_sev}
