"""Who is eligible for a policy, and for how much (contract v1.1 §1.10, §2.4).

One SQL statement per policy over the profile: the firms whose ``eligible`` is true (SQL's null
logic: a condition on an empty value is not true), the raw ``amount`` and the profile values the
eligibility names. Then, in exact decimals:

- an amount is rounded half up to 0.000001 万元 (the contract's six decimals); a negative one is
  0; an empty one (the amount names a field the firm lacks) leaves the firm out, counted in
  ``Outcome.no_amount``;
- when the amounts exceed the policy's ``budget``, each is scaled by budget / total and rounded
  down to 0.0001 万元 (one yuan), so the sum never exceeds the budget;
- ``reason`` names, in Chinese, the values that made the firm eligible.

``run_duckdb`` matches a county in process; ``spark_sql`` is the same per-policy statement for
Spark, over a profile built by ``profile.transpiled(year, "spark")``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import pyarrow as pa
import sqlglot

from qifu.engine.policies import profile
from qifu.engine.policies.policy import Policy

OUTPUT = ("policy_id", "uscc", "amount", "reason")
MICRO = Decimal("0.000001")
YUAN = Decimal("0.0001")


@dataclass
class Outcome:
    """One policy's matches: (uscc, amount, reason, values) rows, sorted by credit code."""

    policy: Policy
    rows: list[tuple[str, Decimal, str, dict]] = field(default_factory=list)
    total_before_budget: Decimal = Decimal(0)
    scaled: bool = False
    no_amount: int = 0

    @property
    def total(self) -> Decimal:
        return sum((r[1] for r in self.rows), Decimal(0))


def policy_sql(policy: Policy, relation: str = "profile", dialect: str = "duckdb") -> str:
    def q(name: str) -> str:
        return sqlglot.exp.to_identifier(name, quoted=True).sql(dialect)

    values = ", ".join(f"{q(c)} AS {q('v_' + c)}" for c in policy.fields)
    return (f"SELECT uscc, {policy.amount_sql(dialect)} AS amount{', ' + values if values else ''} "
            f"FROM {relation} WHERE {policy.eligible_sql(dialect)} ORDER BY uscc")


def spark_sql(policy: Policy, relation: str = "profile") -> str:
    return policy_sql(policy, relation, "spark")


def _text(name: str, v) -> str:
    if v is None:
        return "空"
    _, _, choices = profile.COLUMNS[name]
    if choices and isinstance(v, str):
        return dict(choices).get(v, v)
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return format(Decimal(repr(v)).quantize(MICRO, ROUND_HALF_UP).normalize(), "f")
    if isinstance(v, dt.datetime):
        return f"{v:%Y-%m-%d %H:%M}"
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def reason(policy: Policy, values: dict, names: list[str] | None = None) -> str:
    """The profile values the eligibility names: "是否规上工业：是；研发经费支出(万元)：150"."""
    names = policy.fields if names is None else names
    parts = [f"{profile.COLUMNS[name][1]}：{_text(name, values.get(name))}" for name in names]
    return "；".join(parts) if parts else "符合政策条件"


def money(v: float) -> Decimal:
    """A computed amount to the contract's six decimals, half up (0 when negative)."""
    d = Decimal(repr(float(v))).quantize(MICRO, ROUND_HALF_UP)
    return max(d, Decimal(0))


def finish(policy: Policy, table: pa.Table) -> Outcome:
    """The rows of ``policy_sql`` as an outcome: rounded, budgeted, explained."""
    out = Outcome(policy)
    data = table.to_pydict()
    names = policy.fields
    rows = []
    for i, uscc in enumerate(data["uscc"]):
        raw = data["amount"][i]
        if raw is None:
            out.no_amount += 1
            continue
        values = {n: data[f"v_{n}"][i] for n in names}
        rows.append((uscc, money(raw), reason(policy, values, names), values))
    return budgeted(out, rows)


def budgeted(out: Outcome, rows: list) -> Outcome:
    """The rows within the policy's budget: scaled by budget / total and rounded down to one
    yuan when the total exceeds it."""
    out.total_before_budget = sum((r[1] for r in rows), Decimal(0))
    budget = out.policy.budget
    if budget is not None and out.total_before_budget > budget:
        out.scaled = True
        rows = [(u, (a * budget / out.total_before_budget).quantize(YUAN, ROUND_DOWN), r, v) for u, a, r, v in rows]
    out.rows = sorted(rows, key=lambda r: r[0])
    return out


def run_duckdb(policies: list[Policy], year: int, sources: dict[str, pa.Table | str]) -> list[Outcome]:
    """Every policy of data year ``year`` over the profile built from ``sources`` (Arrow tables,
    or Parquet paths for the relations kept as files)."""
    import duckdb

    con = duckdb.connect()
    try:
        register(con, sources)
        con.execute(f"CREATE TEMP TABLE profile AS {profile.sql(year)}")
        return [finish(p, con.sql(policy_sql(p)).to_arrow_table()) for p in policies]
    finally:
        con.close()


def register(con, sources: dict[str, pa.Table | str]) -> None:
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
            con.register(f"_{name}", src)
            relation = f"_{name}"
        available = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
        cols = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' if c in available else f'CAST(NULL AS {t}) AS "{c}"'
                         for c, t in columns.items())
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT {cols} FROM {relation}")


def transpile(sql_text: str, dialect: str) -> str:
    return sqlglot.transpile(sql_text, read="duckdb", write=dialect)[0]
