"""Who is eligible for a policy, and for how much (contract v1.1 §1.10, §2.4).

One SQL statement per policy over the profile gives the firms whose ``eligible`` is true (SQL's
null logic: a condition on an empty value is not true), each with:

- ``micro``: the amount rounded half up to 0.000001 万元 (the contract's six decimals), as a
  whole number of millionths of 万元 (exact, and fast to add and scale); a negative one is 0; an empty one (the amount names a field the firm lacks) leaves the firm out,
  counted in ``Outcome.no_amount``;
- ``reason``: the profile values the eligibility names, in Chinese ("是否规上工业：是；研发经费支出
  (万元)：150"), formatted by the same SQL on every engine.

Then, in exact decimals, the budget rule: when the amounts exceed the policy's ``budget``, each
is scaled by budget / total and rounded down to 0.0001 万元 (one yuan), so the sum never exceeds
the budget. The matches stay columnar (a Polars frame) from the engine to the database.

``run_duckdb`` matches a county in process; ``spark_sql`` is the same statement for Spark, over
a profile built by ``profile.transpiled(year, "spark")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl

from qifu.engine.policies import profile
from qifu.engine.policies.policy import Policy
from qifu.engine.rules.expressions import in_dialect

if TYPE_CHECKING:
    import pyarrow as pa

MICRO = Decimal("0.000001")
YUAN = Decimal("0.0001")
SCHEMA = {"uscc": pl.String, "micro": pl.Int64, "reason": pl.String}
PER_WAN = 1_000_000  # millionths of 万元 in one 万元
PER_YUAN = 100  # millionths of 万元 in one yuan


def decimal(micro: int) -> Decimal:
    return (Decimal(micro) / PER_WAN).quantize(MICRO)


def to_micro(amount: Decimal) -> int:
    return int((amount * PER_WAN).to_integral_value())


def micro_text(col: str = "micro", trim: bool = False) -> pl.Expr:
    """Millionths of 万元 (a column) as the decimal text, 6.172839; with ``trim``, as written,
    without trailing zeros (50, 0.0592, 0.000001: never 1e-06)."""
    text = pl.format("{}.{}", pl.col(col) // PER_WAN, (pl.col(col) % PER_WAN).cast(pl.String).str.zfill(6))
    return text.str.replace(r"0+$", "").str.replace(r"\.$", "") if trim else text


@dataclass
class Outcome:
    """One policy's matches: a frame of uscc, micro (the amount in millionths of 万元) and
    reason, sorted by credit code; ``extra`` holds what a row covers beyond that (a skill
    subsidy's certificates)."""

    policy: Policy
    frame: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SCHEMA))
    extra: dict[str, dict] = field(default_factory=dict)
    total_before_budget: Decimal = Decimal(0)
    scaled: bool = False
    no_amount: int = 0

    @property
    def rows(self) -> list[tuple[str, Decimal, str, dict]]:
        return [(u, decimal(m), r, self.extra.get(u, {})) for u, m, r in self.frame.iter_rows()]

    @property
    def total(self) -> Decimal:
        return decimal(int(self.frame["micro"].sum() or 0))

    def __len__(self) -> int:
        return self.frame.height


# --- the reason, in SQL ------------------------------------------------------------------------


def _number(col: str) -> str:
    """A figure as written: up to six decimals, no trailing zeros (150, 359.1337, -0.5)."""
    return (f"RTRIM(RTRIM(CAST(CAST(ROUND(CAST({col} AS DECIMAL(38, 10)), 6) AS DECIMAL(38, 6)) AS VARCHAR), "
            f"'0'), '.')")


def _text(name: str) -> str:
    typ, _, choices = profile.COLUMNS[name]
    col = f'"{name}"'
    if typ == "BOOLEAN":
        return f"CASE WHEN {col} THEN '是' WHEN NOT {col} THEN '否' END"
    if typ in ("DOUBLE", "INTEGER"):
        return _number(col)
    if typ == "DATE":
        return f"STRFTIME({col}, '%Y-%m-%d')"
    if typ == "TIMESTAMP":
        return f"STRFTIME({col}, '%Y-%m-%d %H:%M')"
    if choices:
        whens = " ".join(f"WHEN '{v}' THEN '{label}'" for v, label in choices)
        return f"CASE {col} {whens} ELSE {col} END"
    return col


def reason_sql(policy: Policy, dialect: str = "duckdb") -> str:
    """The reason of one firm, as an SQL expression over the profile."""
    parts = [f"'{profile.COLUMNS[name][1]}：' || COALESCE({_text(name)}, '空')" for name in policy.fields]
    text = " || '；' || ".join(parts) if parts else "'符合政策条件'"
    return in_dialect(text, dialect)


def _amount(raw: str, dialect: str) -> str:
    # GREATEST skips an empty value on some engines: an empty amount must stay empty
    text = ("CASE WHEN _raw IS NULL THEN NULL "
            "ELSE GREATEST(CAST(ROUND(CAST(_raw AS DECIMAL(38, 10)) * 1000000) AS BIGINT), 0) END")
    text = in_dialect(text, dialect)
    return text.replace("_raw", f"({raw})")  # the amount is compiled already, per dialect


def policy_sql(policy: Policy, relation: str = "profile", dialect: str = "duckdb") -> str:
    return (f"SELECT uscc, {_amount(policy.amount_sql(dialect), dialect)} AS micro, "
            f"{reason_sql(policy, dialect)} AS reason "
            f"FROM {relation} WHERE {policy.eligible_sql(dialect)} ORDER BY uscc")


def spark_sql(policy: Policy, relation: str = "profile") -> str:
    return policy_sql(policy, relation, "spark")


# --- amounts -------------------------------------------------------------------------------------


class _Stream:
    """A Polars frame seen by DuckDB only as an Arrow stream (``__arrow_c_stream__``, read anew
    at each scan): DuckDB converts a frame it recognises as Polars through pyarrow."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.frame.__arrow_c_stream__(requested_schema)


def finish(policy: Policy, frame: pl.DataFrame) -> Outcome:
    """The rows of ``policy_sql`` as an outcome: firms without an amount left out, the budget
    rule applied."""
    frame = frame.select(pl.col("uscc").cast(pl.String), pl.col("micro").cast(pl.Int64), pl.col("reason").cast(pl.String))
    out = Outcome(policy)
    out.no_amount = frame["micro"].null_count()
    return budgeted(out, frame.filter(pl.col("micro").is_not_null()))


def budgeted(out: Outcome, frame: pl.DataFrame) -> Outcome:
    """The frame within the policy's budget: scaled by budget / total and rounded down to one
    yuan when the total exceeds it, in whole numbers (exact)."""
    total = int(frame["micro"].sum() or 0)
    out.total_before_budget = decimal(total)
    budget = out.policy.budget
    if budget is not None and out.total_before_budget > budget:
        out.scaled = True
        b, t = to_micro(budget), total * PER_YUAN
        scaled = [m * b // t * PER_YUAN for m in frame["micro"].to_list()]
        frame = frame.with_columns(pl.Series("micro", scaled, dtype=pl.Int64))
    out.frame = frame.sort("uscc")
    return out


def run_duckdb(policies: list[Policy], year: int, sources: dict[str, pa.Table | pl.DataFrame | str]) -> list[Outcome]:
    """Every policy of data year ``year`` over the profile built from ``sources`` (Arrow tables,
    Polars frames, or Parquet paths for the relations kept as files). Polars reads the result
    through Arrow's stream interface: a run over Parquet and Polars frames imports no pyarrow
    (0.1 s of every run)."""
    import duckdb

    con = duckdb.connect()
    try:
        register(con, sources)
        if not policies:
            return []
        needed = set().union(*(p.columns for p in policies))
        con.execute(f"CREATE TEMP TABLE profile AS {profile.sql(year, needed)}")
        # one statement for every policy: DuckDB runs the branches on all its threads
        union = " UNION ALL ".join(f"SELECT {i} AS k, * FROM ({policy_sql(p)})" for i, p in enumerate(policies))
        parts = pl.DataFrame(con.sql(union)).partition_by("k", as_dict=True, include_key=False)
        empty = pl.DataFrame(schema=SCHEMA)
        return [finish(p, parts.get((i,), empty)) for i, p in enumerate(policies)]
    finally:
        con.close()


def register(con, sources: dict[str, pa.Table | pl.DataFrame | str]) -> None:
    """Each relation of ``profile.SOURCES`` as a view with the profile's types (an empty one
    where a source is missing: a county without land data still matches its other policies)."""
    for name, columns in profile.SOURCES.items():
        src = sources.get(name)
        if src is None:
            cols = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in columns.items())
            con.execute(f"CREATE TEMP VIEW {name} AS SELECT {cols} WHERE FALSE")
            continue
        if isinstance(src, str):
            relation = f"read_parquet('{src}')"
        else:
            con.register(f"_{name}", _Stream(src) if isinstance(src, pl.DataFrame) else src)
            relation = f"_{name}"
        available = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
        cols = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' if c in available else f'CAST(NULL AS {t}) AS "{c}"'
                         for c, t in columns.items())
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT {cols} FROM {relation}")
