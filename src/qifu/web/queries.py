"""Read-only database queries behind the staff pages (the county-wide figures are in
``stats``). Each takes the township a user is confined to (None: the whole county)."""

from __future__ import annotations

from collections import Counter

from django.db import connection
from django.db.models import Max

from qifu.corrections.actions import HANDLED, Rate
from qifu.registry.models import Entity
from qifu.reports.models import AnnualReport


def latest_report_year() -> int | None:
    return AnnualReport.objects.aggregate(y=Max("report_year"))["y"]


def findings_summary(year: int, town: str | None) -> dict:
    """Open findings by rule, findings by severity and status, and the correction rate
    (corrections.actions.rates, overall), from one pass over the year's findings."""
    sql = """SELECT f.id, f.rule_id, f.severity, f.status, MAX(CASE WHEN nf.finding_id IS NULL THEN 0 ELSE 1 END)
             FROM checks_finding f
             LEFT JOIN corrections_correctionnotice_findings nf ON nf.finding_id = f.id
             {join} WHERE f.report_year = %s{where} GROUP BY f.id, f.rule_id, f.severity, f.status"""
    params: list = [year]
    join, where = "", ""
    if town:
        join, where = "JOIN registry_entity e ON e.uscc = f.uscc", " AND e.town_id = %s"
        params.append(town)
    with connection.cursor() as cur:
        cur.execute(sql.format(join=join, where=where), params)
        rows = cur.fetchall()
    by_rule = Counter(r for _, r, _, st, _ in rows if st == "open")
    by_sev = Counter((sev, st) for _, _, sev, st, _ in rows)
    notified = [st for *_, st, n in rows if n]
    rate = Rate("合计", len(notified), sum(1 for st in notified if st in HANDLED))
    return {"by_rule": [{"rule_id": k, "n": n} for k, n in by_rule.most_common(15)], "by_severity": dict(by_sev),
            "rate": rate}


def personal_values(usccs) -> dict[str, set[str]]:
    """Each entity's phone numbers, emails and legal representative as registered and as filed
    in any report revision: what ``masking.text`` must hide in a finding's message even when
    the value is malformed (a ten-digit "mobile")."""
    out: dict[str, set[str]] = {u: set() for u in usccs}
    for u, *values in Entity.objects.filter(uscc__in=out).values_list("uscc", "phone", "email", "legal_rep"):
        out[u].update(v for v in values if v)
    for u, *values in AnnualReport.objects.filter(entity__in=out).values_list("entity_id", "phone", "email"):
        out[u].update(v for v in values if v)
    return out
