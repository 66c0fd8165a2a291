"""The context a rule reads: one wide row per current report of the year being checked.

Rules see the report's own fields (contract names), the previous year's figures
(``prev_<field>``), the registry (``entity_type``, ``legal_form``, ``industry_code``,
``registered_capital``, ``established_on``, ``reg_status``, ``reg_phone``, ``reg_address``,
``legal_rep``), the tax bureau (``tax_declared_sales``, ``tax_paid``), social security
(``social_insured_count``, ``social_arrears``), shareholders (``sh_*``), the last campaign's
reminders (``sms_*``, ``call_*``) and county aggregates (``phone_entity_count``,
``email_entity_count``, ``address_entity_count``, ``fin_vector_count``: 0 when not shared; peer
statistics ``peer_*``). ``docs/rules.md`` lists every column.

The SQL is written once, in DuckDB's dialect, over six source relations (``reports``,
``registry``, ``tax``, ``social``, ``shareholders``, ``reminders``) and transpiled by sqlglot
for Spark. Aggregates are computed in a first step (``aggregates_sql``), once for the whole
county, so that a national run can compute them once and then check entities slice by slice.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp

from qifu.engine.contract import REPORTS, T

REPORT_FIELDS = [f.name for f in REPORTS.fields if f.name not in ("uscc", "report_year")]
NUMERIC_FIELDS = [f.name for f in REPORTS.fields if f.type in (T.MONEY, T.INT)]
FIN8 = ["total_assets", "total_liabilities", "total_equity", "total_revenue", "main_business_revenue",
        "total_profit", "net_profit", "total_tax_paid"]
# Source relation columns (what an export must provide), with engine types.
SOURCES: dict[str, dict[str, str]] = {
    "reports": {"uscc": "VARCHAR", "report_year": "INTEGER", "revision": "INTEGER", "filed_at": "TIMESTAMP",
                **{f.name: ("DOUBLE" if f.type in (T.MONEY, T.INT) else "BOOLEAN" if f.type == T.BOOL else "VARCHAR")
                   for f in REPORTS.fields if f.name not in ("uscc", "report_year", "filed_at")}},
    "registry": {"uscc": "VARCHAR", "name": "VARCHAR", "entity_type": "VARCHAR", "legal_form": "VARCHAR",
                 "industry_code": "VARCHAR", "town": "VARCHAR", "address": "VARCHAR", "registered_capital": "DOUBLE",
                 "established_on": "DATE", "status": "VARCHAR", "legal_rep": "VARCHAR", "phone": "VARCHAR",
                 "email": "VARCHAR"},
    "tax": {"uscc": "VARCHAR", "year": "INTEGER", "declared_sales": "DOUBLE", "tax_paid": "DOUBLE"},
    "social": {"uscc": "VARCHAR", "year": "INTEGER", "insured_count": "DOUBLE", "arrears": "DOUBLE"},
    "shareholders": {"uscc": "VARCHAR", "report_year": "INTEGER", "shareholder_name": "VARCHAR",
                     "subscribed_amount": "DOUBLE", "subscribed_due_date": "DATE", "paid_in_amount": "DOUBLE",
                     "paid_in_date": "DATE", "paid_in_form": "VARCHAR"},
    "reminders": {"uscc": "VARCHAR", "sent_at": "TIMESTAMP", "channel": "VARCHAR", "purpose": "VARCHAR",
                  "status": "VARCHAR"},
}
AGGREGATES = ("agg_phone", "agg_email", "agg_address", "agg_fin", "agg_peer", "agg_industry")

# Per-row meanings, written once in SQL: the batch context runs them in DuckDB or Spark, the
# single-report self-check (checks.single) compiles the same text with the Python engine.
SIZE_BAND = ("CASE WHEN employees IS NULL THEN NULL WHEN employees < 10 THEN 'S' WHEN employees < 50 THEN 'M' "
             "WHEN employees < 250 THEN 'L' ELSE 'XL' END")
FIN_KEY = " || '|' || ".join(f"CAST({f} AS VARCHAR)" for f in FIN8)
# A report's eight financial figures count as a vector others may share (fin_vector_count).
FIN_SHARABLE = " AND ".join(f"{f} IS NOT NULL" for f in FIN8) + " AND total_revenue > 0 AND total_assets > 0"
# A phone or email counts as shared only when it is written at all.
WRITTEN = "{0} IS NOT NULL AND TRIM({0}) <> ''"
# Of one shareholder row: paid in more than subscribed (beyond rounding); paid in without date or form.
SH_PAID_OVER_SUBSCRIBED = ("paid_in_amount > subscribed_amount "
                           "+ GREATEST(0.01, 0.005 * GREATEST(ABS(paid_in_amount), ABS(subscribed_amount)))")
SH_PAID_MISSING_INFO = "paid_in_amount > 0 AND (paid_in_date IS NULL OR paid_in_form IS NULL OR TRIM(paid_in_form) = '')"


def aggregates_sql(year: int) -> dict[str, str]:
    """County aggregates over the current reports of ``year`` (DuckDB dialect)."""
    cur = f"(SELECT * FROM reports WHERE report_year = {year})"
    return {
        "agg_phone": f"""SELECT r.phone, COUNT(DISTINCT r.uscc) AS phone_entity_count,
                COUNT(DISTINCT g.legal_rep) AS phone_rep_count
            FROM {cur} r LEFT JOIN registry g ON g.uscc = r.uscc
            WHERE {WRITTEN.format('r.phone')} GROUP BY r.phone HAVING COUNT(DISTINCT r.uscc) > 1""",
        "agg_email": f"""SELECT LOWER(email) AS email_key, COUNT(DISTINCT uscc) AS email_entity_count FROM {cur} r
            WHERE {WRITTEN.format('email')} GROUP BY LOWER(email) HAVING COUNT(DISTINCT uscc) > 1""",
        "agg_address": """SELECT address, COUNT(*) AS address_entity_count FROM registry
            WHERE address IS NOT NULL AND status = 'active' GROUP BY address HAVING COUNT(*) > 1""",
        "agg_fin": f"""SELECT {FIN_KEY} AS fin_key, COUNT(*) AS fin_vector_count FROM {cur} r
            WHERE {FIN_SHARABLE} GROUP BY {FIN_KEY} HAVING COUNT(*) > 1""",
        # Robust statistics of log10(revenue per employee) by industry class x size band.
        "agg_peer": f"""WITH base AS (
                SELECT g.industry_code, {SIZE_BAND.replace('employees', 'r.employees')} AS size_band,
                       LN(r.total_revenue / r.employees) / 2.302585092994046 AS lrpe
                FROM {cur} r JOIN registry g ON g.uscc = r.uscc
                WHERE r.total_revenue > 0 AND r.employees > 0 AND g.industry_code IS NOT NULL),
            med AS (SELECT industry_code, size_band, COUNT(*) AS n, QUANTILE_CONT(lrpe, 0.5) AS m,
                           QUANTILE_CONT(lrpe, 0.01) AS p01, QUANTILE_CONT(lrpe, 0.99) AS p99
                    FROM base GROUP BY industry_code, size_band)
            SELECT med.industry_code, med.size_band, med.n AS peer_n, med.m AS peer_lrpe_median,
                   med.p01 AS peer_lrpe_p01, med.p99 AS peer_lrpe_p99,
                   QUANTILE_CONT(ABS(base.lrpe - med.m), 0.5) AS peer_lrpe_mad
            FROM base JOIN med ON base.industry_code = med.industry_code AND base.size_band = med.size_band
            GROUP BY med.industry_code, med.size_band, med.n, med.m, med.p01, med.p99""",
        "agg_industry": f"""SELECT g.industry_code, COUNT(*) AS industry_n,
                QUANTILE_CONT(r.total_tax_paid / r.total_revenue, 0.5) AS industry_tax_rate_median,
                QUANTILE_CONT(r.total_revenue / r.total_assets, 0.99) AS industry_turnover_p99
            FROM {cur} r JOIN registry g ON g.uscc = r.uscc
            WHERE r.total_revenue > 0 AND r.total_assets > 0 AND r.total_tax_paid IS NOT NULL
            GROUP BY g.industry_code""",
    }


REMINDER_COLUMNS = ("sms_sent", "sms_failed", "sms_delivered", "call_failed", "call_delivered")


def reminder_counts_sql(year: int | None) -> str:
    """Per entity, the contacts of the filing season after ``year`` (DuckDB dialect); with no
    year, of every season, keyed by the report year it was for. Kept apart from the rest of
    the context because it changes every day of a season."""
    season = "CAST(YEAR(sent_at) - 1 AS INTEGER)"
    return f"""SELECT uscc, {'' if year is not None else f'{season} AS report_year, '}
           SUM(CASE WHEN channel = 'sms' THEN 1 ELSE 0 END) AS sms_sent,
           SUM(CASE WHEN channel = 'sms' AND status = 'failed' THEN 1 ELSE 0 END) AS sms_failed,
           SUM(CASE WHEN channel = 'sms' AND status = 'delivered' THEN 1 ELSE 0 END) AS sms_delivered,
           SUM(CASE WHEN channel = 'call' AND status = 'failed' THEN 1 ELSE 0 END) AS call_failed,
           SUM(CASE WHEN channel = 'call' AND status = 'delivered' THEN 1 ELSE 0 END) AS call_delivered
    FROM reminders
    {f"WHERE sent_at >= CAST('{year + 1}-01-01' AS TIMESTAMP) AND sent_at < CAST('{year + 2}-01-01' AS TIMESTAMP)"
     if year is not None else "WHERE sent_at IS NOT NULL"}
    GROUP BY uscc{'' if year is not None else f', {season}'}"""


def with_reminders(base: str, rem: str) -> str:
    """The context: ``base`` (a relation or a query) with the reminder counts of ``rem``."""
    cols = ", ".join(f"COALESCE(rem.{c}, 0) AS {c}" for c in REMINDER_COLUMNS)
    return f"SELECT b.*, {cols} FROM {base} b LEFT JOIN {rem} rem ON rem.uscc = b.uscc"


def context_sql(year: int, partition: tuple[int, int] | None = None, columns: frozenset[str] | None = None) -> str:
    """The wide context row per current report of ``year`` (DuckDB dialect). ``partition``
    (p, n) keeps one n-th of the entities, by hash of the credit code (DuckDB only).
    ``columns``: only these context columns (and the keys), with only the joins they need (see
    ``needs``); None for every column."""
    base = f"({base_context_sql(year, partition, columns)})"
    if columns is not None and not set(REMINDER_COLUMNS) & columns:
        return f"SELECT * FROM {base} b"
    return with_reminders(base, f"({reminder_counts_sql(year)})")


# What each joined relation of the context is, and the relations it needs first.
_JOINS = {
    "g": ("LEFT JOIN registry g ON g.uscc = r.uscc", ()),
    "p": ("LEFT JOIN prev p ON p.uscc = r.uscc", ()),
    "t": ("LEFT JOIN tax t ON t.uscc = r.uscc AND t.year = {year}", ()),
    "pt": ("LEFT JOIN tax pt ON pt.uscc = r.uscc AND pt.year = {prev}", ()),
    "s": ("LEFT JOIN social s ON s.uscc = r.uscc AND s.year = {year}", ()),
    "ps": ("LEFT JOIN social ps ON ps.uscc = r.uscc AND ps.year = {prev}", ()),
    "sh": ("LEFT JOIN sh ON sh.uscc = r.uscc AND sh.report_year = {year}", ()),
    "psh": ("LEFT JOIN sh psh ON psh.uscc = r.uscc AND psh.report_year = {prev}", ()),
    "ap": ("LEFT JOIN agg_phone ap ON ap.phone = r.phone", ()),
    "ae": ("LEFT JOIN agg_email ae ON ae.email_key = LOWER(r.email)", ()),
    "aa": ("LEFT JOIN agg_address aa ON aa.address = g.address", ("g",)),
    "af": ("LEFT JOIN agg_fin af ON af.fin_key = " + FIN_KEY.replace("CAST(", "CAST(r."), ()),
    "pe": ("LEFT JOIN agg_peer pe ON pe.industry_code = g.industry_code AND pe.size_band = "
           + SIZE_BAND.replace("employees", "r.employees"), ("g",)),
    "ai": ("LEFT JOIN agg_industry ai ON ai.industry_code = g.industry_code", ("g",)),
}
# The aggregate each join reads, and the sources each join or aggregate reads.
JOIN_AGGREGATE = {"ap": "agg_phone", "ae": "agg_email", "aa": "agg_address", "af": "agg_fin", "pe": "agg_peer",
                  "ai": "agg_industry"}
_SOURCES = {"g": "registry", "p": "reports", "t": "tax", "pt": "tax", "s": "social", "ps": "social",
            "sh": "shareholders", "psh": "shareholders", "agg_phone": "registry", "agg_address": "registry",
            "agg_peer": "registry", "agg_industry": "registry"}


def _items(year: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """(column, expression, joins) of the context's columns, in order."""
    items = [("uscc", "r.uscc", ()), ("report_year", "r.report_year", ()), ("revision", "r.revision", ())]
    items += [(f, f"r.{f}", ()) for f in REPORT_FIELDS]
    items += [("filed_date", "CAST(r.filed_at AS DATE)", ()), ("report_year_end", f"CAST('{year}-12-31' AS DATE)", ())]
    items += [(name, f"g.{col}", ("g",)) for name, col in (
        ("reg_name", "name"), ("entity_type", "entity_type"), ("legal_form", "legal_form"),
        ("industry_code", "industry_code"), ("town", "town"), ("reg_address", "address"),
        ("registered_capital", "registered_capital"), ("established_on", "established_on"), ("reg_status", "status"),
        ("legal_rep", "legal_rep"), ("reg_phone", "phone"), ("reg_email", "email"))]
    items.append(("has_prev", "CASE WHEN p.uscc IS NULL THEN FALSE ELSE TRUE END", ("p",)))
    items += [(f"prev_{f}", f"p.{f}", ("p",)) for f in NUMERIC_FIELDS]
    items += [("tax_declared_sales", "t.declared_sales", ("t",)), ("tax_paid", "t.tax_paid", ("t",)),
              ("prev_tax_declared_sales", "pt.declared_sales", ("pt",)), ("prev_tax_paid", "pt.tax_paid", ("pt",)),
              ("social_insured_count", "s.insured_count", ("s",)), ("social_arrears", "s.arrears", ("s",)),
              ("prev_social_insured_count", "ps.insured_count", ("ps",)),
              ("sh_count", "COALESCE(sh.sh_count, 0)", ("sh",)), ("sh_subscribed_total", "sh.sh_subscribed_total", ("sh",)),
              ("sh_paid_total", "sh.sh_paid_total", ("sh",)),
              ("sh_paid_over_subscribed", "COALESCE(sh.sh_paid_over_subscribed, 0)", ("sh",)),
              ("sh_paid_missing_info", "COALESCE(sh.sh_paid_missing_info, 0)", ("sh",)),
              ("sh_last_paid_in_date", "sh.sh_last_paid_in_date", ("sh",)),
              ("sh_last_due_date", "sh.sh_last_due_date", ("sh",)), ("prev_sh_paid_total", "psh.sh_paid_total", ("psh",)),
              ("phone_entity_count", "COALESCE(ap.phone_entity_count, 0)", ("ap",)),
              ("phone_rep_count", "COALESCE(ap.phone_rep_count, 0)", ("ap",)),
              ("email_entity_count", "COALESCE(ae.email_entity_count, 0)", ("ae",)),
              ("address_entity_count", "COALESCE(aa.address_entity_count, 0)", ("aa",)),
              ("fin_vector_count", "COALESCE(af.fin_vector_count, 0)", ("af",))]
    items += [(c, f"pe.{c}", ("pe",)) for c in ("peer_n", "peer_lrpe_median", "peer_lrpe_p01", "peer_lrpe_p99",
                                                "peer_lrpe_mad")]
    items += [(c, f"ai.{c}", ("ai",)) for c in ("industry_n", "industry_tax_rate_median", "industry_turnover_p99")]
    return items


def needs(columns: frozenset[str] | None) -> tuple[list[str], list[str], list[str]]:
    """For the context ``columns`` (None: all): the joins, the aggregates and the sources they
    need, in order."""
    items = _items(0)  # only the names and joins are read, not the year's expressions
    wanted = [i for i in items if columns is None or i[0] in columns or i[0] in ("uscc", "report_year", "revision")]
    joins: list[str] = []

    def add(alias: str) -> None:
        for first in _JOINS[alias][1]:
            add(first)
        if alias not in joins:
            joins.append(alias)

    for _, _, js in wanted:
        for j in js:
            add(j)
    joins = [j for j in _JOINS if j in joins]  # the full context's order
    aggregates = [JOIN_AGGREGATE[j] for j in joins if j in JOIN_AGGREGATE]
    sources = {"reports"} | {_SOURCES[x] for x in joins + aggregates if x in _SOURCES}
    if columns is None or set(REMINDER_COLUMNS) & columns:
        sources.add("reminders")
    return joins, aggregates, [s for s in SOURCES if s in sources]


def base_context_sql(year: int, partition: tuple[int, int] | None = None,
                     columns: frozenset[str] | None = None) -> str:
    """The context without the reminder counts: what only an import changes. ``columns``: only
    these columns and the joins they need (None: all)."""
    part = f" AND hash(uscc) % {partition[1]} = {partition[0]}" if partition else ""
    joins, _, _ = needs(columns)
    keep = [i for i in _items(year) if columns is None or i[0] in columns or i[0] in ("uscc", "report_year", "revision")]
    select = ",\n       ".join(e if e == f"r.{n}" or e == f"g.{n}" else f"{e} AS {n}" for n, e, _ in keep)
    ctes = [f"cur AS (SELECT * FROM reports WHERE report_year = {year}{part})"]
    if "p" in joins:
        ctes.append(f"prev AS (SELECT * FROM reports WHERE report_year = {year - 1})")
    if "sh" in joins or "psh" in joins:
        ctes.append(f"""sh AS (
    SELECT uscc, report_year, COUNT(*) AS sh_count, SUM(subscribed_amount) AS sh_subscribed_total,
           SUM(paid_in_amount) AS sh_paid_total,
           SUM(CASE WHEN {SH_PAID_OVER_SUBSCRIBED} THEN 1 ELSE 0 END) AS sh_paid_over_subscribed,
           SUM(CASE WHEN {SH_PAID_MISSING_INFO} THEN 1 ELSE 0 END) AS sh_paid_missing_info,
           MAX(paid_in_date) AS sh_last_paid_in_date,
           MAX(subscribed_due_date) AS sh_last_due_date
    FROM shareholders WHERE report_year IN ({year}, {year - 1}) GROUP BY uscc, report_year)""")
    body = "\n".join(_JOINS[j][0].format(year=year, prev=year - 1) for j in joins)
    return f"""
WITH {", ".join(ctes)}
SELECT {select}
FROM cur r
{body}
"""


@lru_cache(maxsize=64)
def transpile(sql: str, dialect: str) -> str:
    """DuckDB text to ``dialect``. Exact quantiles are spelled ``percentile(x, q)`` for Spark:
    sqlglot prints PERCENTILE_CONT(x, q), which Spark does not accept."""
    if dialect == "duckdb":
        return sql
    tree = sqlglot.parse_one(sql, read="duckdb")
    if dialect == "spark":
        tree = tree.transform(
            lambda n: exp.Anonymous(this="percentile", expressions=[n.this, n.expression])
            if isinstance(n, exp.PercentileCont) else n
        )
    return tree.sql(dialect=dialect)
