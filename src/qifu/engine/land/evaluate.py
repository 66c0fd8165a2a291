"""The method compiled to one SQL query (DuckDB's dialect, transpiled by sqlglot for Spark),
over two relations: ``indicators`` (contract §1.9) and ``parcels`` (§1.8). Every definition of
§1.10, in order:

- area per firm from its parcels: owned and rented ``area_mu`` summed;
- group: ``above`` for an above-threshold firm (area: owned + rented); below threshold,
  ``below_large`` if it owns at least ``large_mu``, ``below_small`` if it owns less but some,
  ``tenant`` if it owns none but rents (area: what put it there); no parcel: not evaluated
  (无用地信息); a group the method does not have: not evaluated either;
- each indicator's value (missing when an input is empty or a divisor 0);
- points = value ÷ benchmark × weight, clamped to [0, cap × weight] ([0, ∞) without a cap);
  a missing value 0 points, or with ``missing: group_average`` the mean points of that
  indicator over the firms of its group that have it (vetoed and exempt ones too; 0 if none);
- score = the sum of the points;
- a veto: class D; an exemption: no class (managed as B); neither ranked;
- the others of a group ranked by score, highest first, ties by credit code; the k-th of n
  gets the first class X of A, B, C, D with k ≤ ceil(share_X × n), in exact integer arithmetic
  (a share p/q gives ceil(p·n/q) = (p·n + q − 1) div q).

``run_duckdb`` evaluates in process; ``spark_sql`` is the same query for Spark (a province).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pyarrow as pa

from qifu.engine.land.method import CLASSES, INDICATORS, Method
from qifu.engine.rules.expressions import in_dialect

# The two relations the query reads, typed as every engine reads them (the database, Parquet).
INPUTS = {
    "indicators": pa.schema([("uscc", pa.string()), ("year", pa.int64()), ("above_threshold", pa.bool_()),
                             *((c, pa.float64()) for c in ("evaluated_tax", "electricity", "value_added", "main_revenue",
                                                           "rd_spend", "energy_tce", "emissions", "avg_employees")),
                             ("veto", pa.string()), ("exempt", pa.string())]),
    "parcels": pa.schema([("parcel_id", pa.string()), ("uscc", pa.string()), ("role", pa.string()),
                          ("area_mu", pa.float64())]),
}

OUTPUT = ("uscc", "year", "group", "area_mu", "score", "rank", "class", "note")
NO_LAND = "无用地信息"
NO_GROUP = "方法未设此组，不参评"


def _num(d: Decimal) -> str:
    return format(d, "f")


def _value(name: str) -> str:
    num, den, factor = INDICATORS[name]
    scale = f" * {factor}" if factor != 1 else ""
    return (f"CASE WHEN {num} IS NULL OR {den} IS NULL OR {den} = 0 THEN NULL "
            f"ELSE CAST({num} AS DOUBLE) / {den}{scale} END")


def _raw_points(method: Method, name: str) -> str:
    """The points of ``name`` in each group that has it (NULL where it has no value, or in a
    group without it)."""
    whens = []
    for group, indicators in method.groups.items():
        if name not in indicators:
            continue
        ind = indicators[name]
        points = f"v_{name} / {_num(ind.benchmark)} * {_num(ind.weight)}"
        upper = f"LEAST(GREATEST({points}, 0), {_num(method.cap * ind.weight)})" if method.cap else f"GREATEST({points}, 0)"
        # GREATEST and LEAST skip NULLs on DuckDB and Spark: a missing value stays missing here
        whens.append(f"WHEN '{group}' THEN CASE WHEN v_{name} IS NULL THEN NULL ELSE {upper} END")
    return f"CASE grp {' '.join(whens)} ELSE NULL END" if whens else "NULL"


def _points(method: Method, name: str) -> str:
    whens = []
    for group, indicators in method.groups.items():
        if name not in indicators:
            continue
        fallback = f"COALESCE(a_{name}, 0)" if indicators[name].missing == "group_average" else "0"
        whens.append(f"WHEN '{group}' THEN COALESCE(r_{name}, {fallback})")
    return f"CASE grp {' '.join(whens)} ELSE NULL END" if whens else "NULL"


def _cut(share: Decimal) -> str:
    """ceil(share × n) in integer arithmetic."""
    f = Fraction(share)
    return f"(({f.numerator} * n + {f.denominator - 1}) // {f.denominator})"


def sql(method: Method) -> str:
    """The evaluation of ``method.year`` (DuckDB dialect)."""
    names = method.indicators
    groups = ", ".join(f"'{g}'" for g in method.groups)
    vals = ",\n       ".join(f"{_value(n)} AS v_{n}" for n in names)
    raws = ",\n       ".join(f"{_raw_points(method, n)} AS r_{n}" for n in names)
    avgs = ", ".join(f"AVG(r_{n}) AS a_{n}" for n in names)
    pts = ",\n       ".join(f"{_points(method, n)} AS p_{n}" for n in names)
    score = " + ".join(f"COALESCE(p_{n}, 0)" for n in names)
    shares = list(method.classes.items())
    klass = " ".join(f"WHEN rnk <= {_cut(s)} THEN '{c}'" for c, s in shares[:-1])
    large = _num(method.large_mu)
    return f"""
WITH area AS (
    SELECT uscc,
           SUM(CASE WHEN role = 'owner' THEN area_mu ELSE 0 END) AS owned,
           SUM(CASE WHEN role = 'tenant' THEN area_mu ELSE 0 END) AS rented
    FROM parcels GROUP BY uscc),
base AS (
    SELECT i.uscc, i.year, i.above_threshold, i.evaluated_tax, i.electricity, i.value_added, i.main_revenue,
           i.rd_spend, i.energy_tce, i.emissions, i.avg_employees,
           CASE WHEN i.veto IS NOT NULL AND TRIM(i.veto) <> '' THEN TRIM(i.veto) END AS veto,
           CASE WHEN i.exempt IS NOT NULL AND TRIM(i.exempt) <> '' THEN TRIM(i.exempt) END AS exempt,
           a.uscc IS NOT NULL AS has_land, COALESCE(a.owned, 0) AS owned, COALESCE(a.rented, 0) AS rented
    FROM indicators i LEFT JOIN area a ON a.uscc = i.uscc
    WHERE i.year = {method.year}),
grouped AS (
    SELECT *,
           CASE WHEN above_threshold THEN 'above'
                WHEN owned >= {large} THEN 'below_large'
                WHEN owned > 0 THEN 'below_small'
                WHEN rented > 0 THEN 'tenant' END AS natural_grp
    FROM base),
sized AS (
    SELECT *,
           CASE WHEN natural_grp IN ({groups}) THEN natural_grp END AS grp,
           CASE natural_grp WHEN 'above' THEN owned + rented WHEN 'tenant' THEN rented ELSE owned END AS area_mu
    FROM grouped),
vals AS (
    SELECT *,
       {vals}
    FROM sized),
raw AS (
    SELECT *,
       {raws}
    FROM vals),
averages AS (SELECT grp AS avg_grp, {avgs} FROM raw WHERE grp IS NOT NULL GROUP BY grp),
pts AS (
    SELECT raw.*,
       {pts}
    FROM raw LEFT JOIN averages ON averages.avg_grp = raw.grp),
scored AS (
    SELECT *, CASE WHEN grp IS NOT NULL THEN {score} END AS score,
           grp IS NOT NULL AND veto IS NULL AND exempt IS NULL AS ranked
    FROM pts),
ranked AS (
    SELECT *,
           CASE WHEN ranked THEN ROW_NUMBER() OVER (PARTITION BY grp, ranked ORDER BY score DESC, uscc) END AS rnk,
           CASE WHEN ranked THEN COUNT(*) OVER (PARTITION BY grp, ranked) END AS n
    FROM scored)
SELECT uscc, year, grp AS "group", CASE WHEN grp IS NOT NULL THEN area_mu END AS area_mu, score, rnk AS "rank",
       CASE WHEN grp IS NULL THEN NULL
            WHEN veto IS NOT NULL THEN 'D'
            WHEN exempt IS NOT NULL THEN NULL
            {klass} ELSE '{CLASSES[-1]}' END AS "class",
       CASE WHEN natural_grp IS NULL AND NOT has_land THEN '{NO_LAND}'
            WHEN natural_grp IS NULL THEN '{NO_LAND}'
            WHEN grp IS NULL THEN '{NO_GROUP}'
            WHEN veto IS NOT NULL THEN '否决：' || veto
            WHEN exempt IS NOT NULL THEN '不参评：' || exempt || '（按B类管理）'
            ELSE '' END AS note,
       {", ".join(f"p_{n} AS points_{n}" for n in names)}
FROM ranked
ORDER BY "group", "rank", uscc
"""


def spark_sql(method: Method) -> str:
    return in_dialect(sql(method), "spark")


def columns(method: Method) -> list[str]:
    return [*OUTPUT, *(f"points_{n}" for n in method.indicators)]


def run_duckdb(method: Method, indicators, parcels):
    """The result as an Arrow table; ``indicators`` and ``parcels`` are Arrow tables (or
    anything DuckDB can scan by name)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("indicators", indicators)
        con.register("parcels", parcels)
        return con.sql(sql(method)).to_arrow_table()
    finally:
        con.close()
