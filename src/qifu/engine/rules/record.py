"""The single-report engine: the same compiled rules over one context row, in milliseconds.

Given context rows directly (``check_context``), it evaluates the catalogue with DuckDB; the
rule examples run through it so that every example is held to DuckDB as well as to the Python
engine (``python_engine``), which is what a single report should use: DuckDB takes about 90 ms
for one row.
"""

from __future__ import annotations

import datetime as dt
import threading
from functools import lru_cache

import duckdb
import polars as pl
import pyarrow as pa

from qifu.engine.rules import duckdb_engine
from qifu.engine.rules.compiler import record_query
from qifu.engine.rules.model import Rule

_local = threading.local()


@lru_cache(maxsize=1)
def ctx_schema() -> tuple[tuple[str, str], ...]:
    """Column names and DuckDB types of the context row."""
    con = duckdb_engine.connect({})
    duckdb_engine.build_context(con, 2025)
    return tuple((name, typ) for name, typ, *_ in con.execute("DESCRIBE ctx").fetchall())


def _arrow_type(duck: str) -> pa.DataType:
    return {
        "VARCHAR": pa.string(), "DOUBLE": pa.float64(), "INTEGER": pa.int32(), "BIGINT": pa.int64(),
        "BOOLEAN": pa.bool_(), "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us"), "HUGEINT": pa.float64(),
    }.get(duck, pa.float64())


def _coerce(value, typ: pa.DataType):
    if value is None:
        return None
    if pa.types.is_date(typ) and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if pa.types.is_floating(typ):
        return float(value)
    if pa.types.is_integer(typ):
        return int(value)
    return value


def context_table(records: list[dict]) -> pa.Table:
    """Context rows from dictionaries; columns not given are empty."""
    schema = pa.schema([(n, _arrow_type(t)) for n, t in ctx_schema()])
    data = {f.name: [_coerce(r.get(f.name), f.type) for r in records] for f in schema}
    return pa.table(data, schema=schema)


def _connection() -> duckdb.DuckDBPyConnection:
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute("SET threads = 1")
        _local.con = con
    return con


def check_context(records: list[dict], rules: list[Rule] | tuple[Rule, ...]) -> pl.DataFrame:
    """Hits (uscc, report_year, rule_key, v1, v2, v3, suggestion) for given context rows."""
    return _hits(context_table(records), rules)


def _hits(table: pa.Table, rules) -> pl.DataFrame:
    sql, keys = _query(rules)
    con = _connection()
    con.register("ctx", table)
    try:
        wide = con.sql(sql).pl()
    finally:
        con.unregister("ctx")
    rows = []
    for rec in wide.iter_rows(named=True):
        for i, (_, key) in enumerate(keys):
            if rec[f"c{i}"]:
                rows.append({"uscc": rec["uscc"], "report_year": rec["report_year"], "rule_key": key,
                             "v1": rec[f"v{i}_1"], "v2": rec[f"v{i}_2"], "v3": rec[f"v{i}_3"], "suggestion": rec[f"s{i}"]})
    schema = {"uscc": pl.Utf8, "report_year": pl.Int64, "rule_key": pl.Utf8, "v1": pl.Float64, "v2": pl.Float64,
              "v3": pl.Float64, "suggestion": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


_QUERIES: dict[tuple[int, ...], tuple] = {}


def _query(rules):
    """Compiled once per rule set (keyed by the identity of the loaded rule objects)."""
    key = tuple(id(r) for r in rules)
    if key not in _QUERIES:
        _QUERIES[key] = (record_query(list(rules)), list(rules))  # keep the rules alive with their key
    return _QUERIES[key][0]
