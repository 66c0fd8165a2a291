"""The entity profile a policy is judged on (contract v1.1 §1.10): one row per registered
entity for one data year, built from what is already imported and computed.

- every registry field (§1.1; ``industry_code`` as stored, letter + four digits, and
  ``industry_section``, its letter); ``age_years``: whole years from ``established_on`` to
  31 December of the year;
- the year's current report (§1.2, empty when not filed; the report's own phone and email are
  ``report_phone`` and ``report_email``, the registry's keep their names) and
  ``filed_on_time``: filed by 30 June of the next year (local time);
- ``declared_sales``, ``tax_paid`` (§1.4); ``insured_count``, ``arrears`` (§1.5);
- the year's indicators (§1.9); ``land_area_mu``: owned plus rented parcels; ``land_group``,
  ``land_score``, ``land_class`` from the year's land evaluation (empty when none);
- ``open_findings``: open block or high findings on the year's report (0 when none).

The SQL is written once in DuckDB's dialect over eight relations (``registry``, ``reports``,
``tax``, ``social``, ``indicators``, ``parcels``, ``land``, ``findings``) and transpiled by
sqlglot for Spark and PostgreSQL.
"""

from __future__ import annotations

from qifu.engine.contract import INDICATORS, REGISTRY, REPORTS, SOCIAL, TAX, T
from qifu.engine.rules.expressions import in_dialect

_TYPE = {T.STR: "VARCHAR", T.USCC: "VARCHAR", T.ENUM: "VARCHAR", T.MONEY: "DOUBLE", T.DECIMAL: "DOUBLE",
         T.INT: "DOUBLE", T.YEAR: "INTEGER", T.DATE: "DATE", T.DATETIME: "TIMESTAMP", T.BOOL: "BOOLEAN"}
RENAMED = {"phone": "report_phone", "email": "report_email"}  # the report's, beside the registry's

# name -> (engine type, Chinese label, enumeration choices)
COLUMNS: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {}
for _f in REGISTRY.fields:
    COLUMNS[_f.name] = (_TYPE[_f.type], _f.label, _f.choices)
COLUMNS["industry_section"] = ("VARCHAR", "行业门类", ())
COLUMNS["age_years"] = ("INTEGER", "成立年限(年)", ())
COLUMNS["year"] = ("INTEGER", "数据年度", ())
REPORT_COLUMNS = [f for f in REPORTS.fields if f.name not in ("uscc", "report_year")]
for _f in REPORT_COLUMNS:
    COLUMNS[RENAMED.get(_f.name, _f.name)] = (_TYPE[_f.type], _f.label, _f.choices)
COLUMNS["filed_on_time"] = ("BOOLEAN", "按时年报", ())
for _kind in (TAX, SOCIAL):
    for _f in _kind.fields:
        if _f.name not in ("uscc", "year"):
            COLUMNS[_f.name] = (_TYPE[_f.type], _f.label + ("(万元)" if _f.type == T.MONEY else ""), _f.choices)
INDICATOR_COLUMNS = [f for f in INDICATORS.fields if f.name not in ("uscc", "year")]
for _f in INDICATOR_COLUMNS:
    COLUMNS[_f.name] = (_TYPE[_f.type], _f.label, _f.choices)
COLUMNS["land_area_mu"] = ("DOUBLE", "用地面积(亩)", ())
COLUMNS["land_group"] = ("VARCHAR", "亩均评价分组", (("above", "规上工业企业"), ("below_large", "规下企业（用地达标准）"),
                                                ("below_small", "规下企业（用地不足标准）"), ("tenant", "租用厂房企业")))
COLUMNS["land_score"] = ("DOUBLE", "亩均评价得分", ())
COLUMNS["land_class"] = ("VARCHAR", "亩均评价类别", ())
COLUMNS["open_findings"] = ("INTEGER", "未处理的严重校验问题(个)", ())

# The relations the profile reads, with the columns it takes from each.
SOURCES: dict[str, dict[str, str]] = {
    "registry": {f.name: _TYPE[f.type] for f in REGISTRY.fields},
    "reports": {"uscc": "VARCHAR", "report_year": "INTEGER",
                **{f.name: _TYPE[f.type] for f in REPORT_COLUMNS}},
    "tax": {"uscc": "VARCHAR", "year": "INTEGER", "declared_sales": "DOUBLE", "tax_paid": "DOUBLE"},
    "social": {"uscc": "VARCHAR", "year": "INTEGER", "insured_count": "DOUBLE", "arrears": "DOUBLE"},
    "indicators": {"uscc": "VARCHAR", "year": "INTEGER", **{f.name: _TYPE[f.type] for f in INDICATOR_COLUMNS}},
    "parcels": {"uscc": "VARCHAR", "role": "VARCHAR", "area_mu": "DOUBLE"},
    "land": {"uscc": "VARCHAR", "group": "VARCHAR", "score": "DOUBLE", "class": "VARCHAR"},
    "findings": {"uscc": "VARCHAR", "open_findings": "INTEGER"},
}


def _cast(alias: str, name: str, typ: str, as_name: str | None = None) -> str:
    return f'CAST({alias}."{name}" AS {typ}) AS {as_name or name}'


REPORT_NAMES = {RENAMED.get(f.name, f.name) for f in REPORT_COLUMNS} | {"filed_on_time"}
INDICATOR_NAMES = {f.name for f in INDICATOR_COLUMNS}
# which source each profile column beyond the registry comes from
SOURCE_COLUMNS = {
    "reports": REPORT_NAMES, "tax": {"declared_sales", "tax_paid"}, "social": {"insured_count", "arrears"},
    "indicators": INDICATOR_NAMES, "parcels": {"land_area_mu"}, "land": {"land_group", "land_score", "land_class"},
    "findings": {"open_findings"},
}


def sources_for(columns: set[str] | None) -> set[str]:
    """The relations a profile of ``columns`` (every column: None) reads."""
    want = set(COLUMNS) if columns is None else set(columns)
    return {"registry"} | {name for name, cols in SOURCE_COLUMNS.items() if cols & want}


def sql(year: int, columns: set[str] | None = None) -> str:
    """The profile of data year ``year`` (DuckDB dialect); with ``columns``, only those (and
    ``uscc``), joining only the sources they come from."""
    year = int(year)
    want = set(COLUMNS) if columns is None else set(columns) | {"uscc"}
    items = [_cast("g", f.name, _TYPE[f.type]) for f in REGISTRY.fields if f.name in want]
    if "industry_section" in want:
        items.append("CAST(SUBSTRING(g.industry_code, 1, 1) AS VARCHAR) AS industry_section")
    if "age_years" in want:
        items.append(f"CAST({year} - YEAR(CAST(g.established_on AS DATE)) AS INTEGER) AS age_years")
    if "year" in want:
        items.append(f"CAST({year} AS INTEGER) AS year")
    joins, ctes = [], []
    need = sources_for(want)
    if "reports" in need:
        ctes.append(f"rep AS (SELECT * FROM reports WHERE report_year = {year})")
        joins.append("LEFT JOIN rep r ON r.uscc = g.uscc")
        items += [_cast("r", f.name, _TYPE[f.type], RENAMED.get(f.name)) for f in REPORT_COLUMNS
                  if RENAMED.get(f.name, f.name) in want]
        if "filed_on_time" in want:
            items.append(f"COALESCE(CAST(r.filed_at AS TIMESTAMP) < CAST('{year + 1}-07-01 00:00:00' AS TIMESTAMP), FALSE)"
                         " AS filed_on_time")
    if "tax" in need:
        ctes.append(f"tx AS (SELECT * FROM tax WHERE year = {year})")
        joins.append("LEFT JOIN tx ON tx.uscc = g.uscc")
        items += [f"CAST(tx.{c} AS DOUBLE) AS {c}" for c in ("declared_sales", "tax_paid") if c in want]
    if "social" in need:
        ctes.append(f"so AS (SELECT * FROM social WHERE year = {year})")
        joins.append("LEFT JOIN so ON so.uscc = g.uscc")
        items += [f"CAST(so.{c} AS DOUBLE) AS {c}" for c in ("insured_count", "arrears") if c in want]
    if "indicators" in need:
        ctes.append(f"ind AS (SELECT * FROM indicators WHERE year = {year})")
        joins.append("LEFT JOIN ind i ON i.uscc = g.uscc")
        items += [_cast("i", f.name, _TYPE[f.type]) for f in INDICATOR_COLUMNS if f.name in want]
    if "parcels" in need:
        ctes.append("area AS (SELECT uscc, SUM(area_mu) AS land_area_mu FROM parcels GROUP BY uscc)")
        joins.append("LEFT JOIN area ON area.uscc = g.uscc")
        items.append("CAST(area.land_area_mu AS DOUBLE) AS land_area_mu")
    if "land" in need:
        joins.append("LEFT JOIN land l ON l.uscc = g.uscc")
        items += [e for c, e in (("land_group", 'CAST(l."group" AS VARCHAR) AS land_group'),
                                 ("land_score", "CAST(l.score AS DOUBLE) AS land_score"),
                                 ("land_class", 'CAST(l."class" AS VARCHAR) AS land_class')) if c in want]
    if "findings" in need:
        joins.append("LEFT JOIN findings f ON f.uscc = g.uscc")
        items.append("CAST(COALESCE(f.open_findings, 0) AS INTEGER) AS open_findings")
    with_ = f"WITH {', '.join(ctes)}\n" if ctes else ""
    return f"{with_}SELECT {', '.join(items)}\nFROM registry g\n" + "\n".join(joins) + "\n"


def transpiled(year: int, dialect: str, columns: set[str] | None = None) -> str:
    return in_dialect(sql(year, columns), dialect)
