"""One report, checked in milliseconds: the enterprise self-check, the API and the staff form.

``context_for`` builds the same wide row the batch engines build with ``context_sql`` (the
report, last year's figures, registry, tax, social security, shareholders, last season's
reminders, county aggregates), from a handful of indexed queries instead of a county-wide
join; the peer statistics come from the latest batch run of the year (``CheckRun.aggregates``).
What a column means (the size band, a shareholder row paid in over its subscription, a phone
"written", a financial vector that can be shared) is the batch context's own SQL
(``engine.rules.context``), compiled for Python here rather than written a second time: running
the whole context SQL on DuckDB for one row takes 40–75 ms, too slow for a check on every
keystroke.
The row then goes through the Python engine, the same compiled rules as DuckDB and Spark. A
test holds the result to the batch findings of the same reports.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from qifu import text
from qifu.caching import Expiring
from qifu.checks.models import CheckRun
from qifu.engine import season, validate
from qifu.engine.contract import REPORTS
from qifu.engine.rules import context, python_engine
from qifu.engine.rules import findings as findings_mod
from qifu.engine.rules.context import FIN8, NUMERIC_FIELDS, REPORT_FIELDS
from qifu.engine.rules.loader import load_rules
from qifu.registry.models import Entity
from qifu.reports.models import AnnualReport

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIELD_TYPES = {f.name: f.type for f in REPORTS.fields}
REPORT_FIELD_SPECS = {f.name: f for f in REPORTS.fields}


def _f(v):
    if v is None:
        return None
    if isinstance(v, Decimal | int):
        return float(v)
    return v


def _size_band(employees) -> str | None:
    return python_engine.expression(context.SIZE_BAND)({"employees": employees})


def _aggregates(year: int) -> dict:
    """The peer statistics of the latest finished batch run of ``year`` (looked up at most
    every few seconds; a new run's statistics are picked up after that)."""
    cached = _AGG_CACHE.get(year)
    if cached and cached[2] > time.monotonic():
        return cached[1]
    run_id = (CheckRun.objects.filter(report_year=year, finished_at__isnull=False).exclude(aggregates={})
              .order_by("-started_at").values_list("id", flat=True).first())
    if run_id is None:
        return {"peer": {}, "industry": {}}
    if cached and cached[0] == run_id:
        _AGG_CACHE[year] = (run_id, cached[1], time.monotonic() + AGG_TTL)
        return cached[1]
    stored = CheckRun.objects.values_list("aggregates", flat=True).get(pk=run_id)
    agg = {
        "peer": {(p["industry_code"], p["size_band"]): p for p in stored.get("peer", [])},
        "industry": {i["industry_code"]: i for i in stored.get("industry", [])},
    }
    _AGG_CACHE[year] = (run_id, agg, time.monotonic() + AGG_TTL)
    return agg


AGG_TTL = 5.0
_AGG_CACHE: dict[int, tuple[int, dict, float]] = {}


def _shareholder_summary(rows: list[Holder]) -> dict:
    if not rows:
        return {}
    sub = [_f(r.subscribed_amount) for r in rows]
    paid = [_f(r.paid_in_amount) for r in rows]
    # the batch context's own per-row conditions, compiled for Python (context.SH_*)
    over_subscribed = python_engine.expression(context.SH_PAID_OVER_SUBSCRIBED)
    missing_info = python_engine.expression(context.SH_PAID_MISSING_INFO)
    records = [vars(r) for r in rows]
    over = sum(1 for rec in records if over_subscribed(rec) is True)
    missing = sum(1 for rec in records if missing_info(rec) is True)
    nonnull = lambda xs: [x for x in xs if x is not None]  # noqa: E731
    return {
        "sh_count": len(rows),
        "sh_subscribed_total": sum(nonnull(sub)) if nonnull(sub) else None,
        "sh_paid_total": sum(nonnull(paid)) if nonnull(paid) else None,
        "sh_paid_over_subscribed": over,
        "sh_paid_missing_info": missing,
        "sh_last_paid_in_date": max(nonnull([r.paid_in_date for r in rows]), default=None),
        "sh_last_due_date": max(nonnull([r.subscribed_due_date for r in rows]), default=None),
    }


def context_for(entity: Entity, year: int, report: dict, revision: int = 1,
                filed_at: dt.datetime | None = None) -> dict:
    """The context row for ``report`` (contract field names, money in 万元) of ``entity``."""
    row: dict = {f: report.get(f) for f in REPORT_FIELDS}
    for f in NUMERIC_FIELDS:
        row[f] = _f(row[f])
    filed_at = filed_at or timezone.now()
    row.update(_entity_part(entity, year))
    row.update(
        uscc=entity.uscc, report_year=year, revision=revision,
        filed_date=timezone.localtime(filed_at, SHANGHAI).date() if timezone.is_aware(filed_at) else filed_at.date(),
    )
    row["filed_at"] = filed_at
    row.update(_shared(entity, year, row))
    agg = _aggregates(year)
    peer = agg["peer"].get((entity.industry_code, _size_band(row.get("employees"))), {})
    ind = agg["industry"].get(entity.industry_code, {})
    for k in ("peer_n", "peer_lrpe_median", "peer_lrpe_p01", "peer_lrpe_p99", "peer_lrpe_mad"):
        row[k] = peer.get(k)
    for k in ("industry_n", "industry_tax_rate_median", "industry_turnover_p99"):
        row[k] = ind.get(k)
    return row


# What does not depend on the figures typed in: kept a minute per entity, because a filer's
# self-check runs again on every change of a figure.
_ENTITY_PART: Expiring[dict] = Expiring(ttl=60.0)


def _entity_part(entity: Entity, year: int) -> dict:
    return _ENTITY_PART.get((entity.uscc, year), lambda: _load_entity_part(entity, year))


def forget_entity_parts() -> None:
    _ENTITY_PART.clear()
    _AGG_CACHE.clear()


def _load_entity_part(entity: Entity, year: int) -> dict:
    row: dict = dict(
        report_year_end=dt.date(year, 12, 31),
        reg_name=entity.name, entity_type=entity.entity_type, legal_form=entity.legal_form,
        industry_code=entity.industry_code, town=entity.town.name, reg_address=entity.address,
        registered_capital=_f(entity.registered_capital), established_on=entity.established_on,
        reg_status=entity.status, legal_rep=entity.legal_rep, reg_phone=entity.phone, reg_email=entity.email,
    )
    # Raw SQL: a self-check runs these on every new filer, and Django's query building costs
    # more than SQLite's answer.
    u = entity.uscc
    prev = _one(f"SELECT {', '.join(NUMERIC_FIELDS)} FROM reports_annualreport "
                "WHERE uscc = %s AND report_year = %s AND is_current", [u, year - 1])
    row["has_prev"] = prev is not None
    for i, f in enumerate(NUMERIC_FIELDS):
        row[f"prev_{f}"] = _f(prev[i]) if prev else None
    tax = {y: (a, b) for y, a, b in _all("SELECT year, declared_sales, tax_paid FROM sources_taxrecord "
                                         "WHERE uscc = %s AND year IN (%s, %s)", [u, year, year - 1])}
    social = {y: (a, b) for y, a, b in _all("SELECT year, insured_count, arrears FROM sources_socialrecord "
                                            "WHERE uscc = %s AND year IN (%s, %s)", [u, year, year - 1])}
    row.update(
        tax_declared_sales=_f(tax[year][0]) if year in tax else None,
        tax_paid=_f(tax[year][1]) if year in tax else None,
        prev_tax_declared_sales=_f(tax[year - 1][0]) if year - 1 in tax else None,
        prev_tax_paid=_f(tax[year - 1][1]) if year - 1 in tax else None,
        social_insured_count=_f(social[year][0]) if year in social else None,
        social_arrears=_f(social[year][1]) if year in social else None,
        prev_social_insured_count=_f(social[year - 1][0]) if year - 1 in social else None,
    )
    holders = [Holder(y, _f(a), _f(b), _date(c), e, _date(d)) for y, a, b, c, e, d in _all(
        "SELECT report_year, subscribed_amount, paid_in_amount, paid_in_date, paid_in_form, subscribed_due_date "
        "FROM reports_shareholder WHERE uscc = %s AND report_year IN (%s, %s)", [u, year, year - 1])]
    cur = _shareholder_summary([h for h in holders if h.report_year == year])
    row.update({"sh_count": 0, "sh_subscribed_total": None, "sh_paid_total": None, "sh_paid_over_subscribed": 0,
                "sh_paid_missing_info": 0, "sh_last_paid_in_date": None, "sh_last_due_date": None, **cur})
    row["prev_sh_paid_total"] = _shareholder_summary([h for h in holders if h.report_year == year - 1]).get("sh_paid_total")
    adapt = connection.ops.adapt_datetimefield_value
    sent_in = (adapt(dt.datetime(year + 1, 1, 1, tzinfo=SHANGHAI)), adapt(dt.datetime(year + 2, 1, 1, tzinfo=SHANGHAI)))
    counts = {(c, st): n for c, st, n in _all(
        "SELECT channel, status, COUNT(*) FROM reminders_reminderrecord WHERE uscc = %s AND sent_at >= %s "
        "AND sent_at < %s GROUP BY channel, status", [u, *sent_in])}
    row.update(
        sms_sent=sum(n for (c, _), n in counts.items() if c == "sms"),
        sms_failed=counts.get(("sms", "failed"), 0), sms_delivered=counts.get(("sms", "delivered"), 0),
        call_failed=counts.get(("call", "failed"), 0), call_delivered=counts.get(("call", "delivered"), 0),
    )
    n = _one("SELECT COUNT(*) FROM registry_entity WHERE address = %s AND status = 'active'",
             [entity.address])[0] if entity.address else 0
    row["address_entity_count"] = n if n > 1 else 0
    return row


@dataclass
class Holder:
    report_year: int
    subscribed_amount: float | None
    paid_in_amount: float | None
    paid_in_date: dt.date | None
    paid_in_form: str | None
    subscribed_due_date: dt.date | None


def _date(v):
    return dt.date.fromisoformat(v[:10]) if isinstance(v, str) else v


def _all(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _one(sql: str, params: list) -> tuple | None:
    rows = _all(sql, params)
    return rows[0] if rows else None


def _shared(entity: Entity, year: int, row: dict) -> dict:
    """How many other entities' current reports share this report's phone, email or financial
    figures (each lookup on an index)."""
    out = {"phone_entity_count": 0, "phone_rep_count": 0, "email_entity_count": 0, "fin_vector_count": 0}
    current = "FROM reports_annualreport r WHERE r.report_year = %s AND r.is_current AND r.uscc <> %s"
    base = [year, entity.uscc]
    written = python_engine.expression(context.WRITTEN.format("value"))
    phone = row.get("phone")
    if written({"value": phone}):
        others = _all(f"SELECT r.uscc, g.legal_rep {current.replace('r WHERE', 'r JOIN registry_entity g ON g.uscc = r.uscc WHERE')} "
                      "AND r.phone = %s", [*base, phone])
        if others:
            out["phone_entity_count"] = len({u for u, _ in others}) + 1
            out["phone_rep_count"] = len({r for _, r in others if r} | ({entity.legal_rep} if entity.legal_rep else set()))
    email = row.get("email")
    if written({"value": email}):
        n = _one(f"SELECT COUNT(DISTINCT r.uscc) {current} AND LOWER(r.email) = %s", [*base, email.lower()])[0]
        out["email_entity_count"] = n + 1 if n else 0
    fin = [row.get(f) for f in FIN8]
    if python_engine.expression(context.FIN_SHARABLE)(row):
        where = " AND ".join(f"r.{f} = %s" for f in FIN8)
        n = _one(f"SELECT COUNT(*) {current} AND {where}", [*base, *(Decimal(repr(float(v))) for v in fin)])[0]
        out["fin_vector_count"] = n + 1 if n else 0
    return out


def prepare(entity: Entity, year: int) -> None:
    """Load what a self-check of ``entity`` reads besides the figures (its registry record, last
    year's report, tax and social records, peer statistics), so that the filer's first check
    answers as fast as the next ones: the self-check page does this when it opens."""
    _entity_part(entity, year)
    _aggregates(year)


def warm() -> None:
    """Load and compile the rule catalogue (about a second): a server does it before it forks
    its workers, so that no request waits for it."""
    python_engine.compiled(load_rules())


def check(entity: Entity, year: int, report: dict, only_fields: set[str] | None = None, **kw) -> list[dict]:
    """Findings (contract §2.1 columns) for one report; with ``only_fields``, only those that
    concern at least one of them (a self-check form that asks for some of the fields)."""
    rules = load_rules()
    row = context_for(entity, year, report, **kw)
    by_id = {r.id: r for r in rules}
    hits = python_engine.evaluate(row, rules, frozenset(only_fields) if only_fields is not None else None)
    found = [findings_mod.render_one({**row, **hit}, by_id) for hit in hits]
    order = {"block": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    return sorted(found, key=lambda f: (order[f["severity"]], f["rule_id"]))


def parse_figures(data: dict) -> tuple[dict, dict[str, str]]:
    """Form or JSON values to typed report fields, by the importer's own parsers (a value reads
    the same in a form as in a file); returns (values, errors by field)."""
    raw, errors = {}, {}
    for name, value in data.items():
        if name not in FIELD_TYPES or name in ("uscc", "report_year", "filed_at"):
            continue
        if isinstance(value, str) and (reason := text.problem(value)):
            errors[name] = reason
            continue
        raw[name] = value
    values, bad = validate.parse_values(raw, REPORT_FIELD_SPECS)
    errors.update(bad)
    return values, errors


def season_year(today: dt.date | None = None) -> int:
    """The report year being filed: last year's report is filed from 1 January to 30 June."""
    return season.filed_in(today or timezone.localdate())


def stored_report(entity: Entity, year: int) -> AnnualReport | None:
    return AnnualReport.objects.filter(entity=entity, report_year=year, is_current=True).first()


def report_values(report: AnnualReport | None) -> dict:
    if report is None:
        return {}
    return {f: getattr(report, f) for f in REPORT_FIELDS if hasattr(report, f)}

