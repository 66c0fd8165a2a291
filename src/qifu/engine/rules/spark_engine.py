"""The national engine: the same rules on Apache Spark, over Parquet.

``run_local`` runs Spark in local mode (tests, a single large machine); ``main`` is the entry
point for a real cluster::

    spark-submit --master yarn $(python -c 'import qifu.engine.rules.spark_engine as m; print(m.__file__)') \\
        --year 2025 --input hdfs:///qifu/analytics --output hdfs:///qifu/findings-2025

The input folder holds the six source relations as Parquet (``registry.parquet``,
``reports.parquet`` …: what ``qifu`` keeps in ``$QIFU_DATA_DIR/analytics``). The context and
aggregate SQL is the DuckDB text transpiled by sqlglot; the rule conditions are compiled for the
``spark`` dialect from the same trees. Hits come back as Arrow.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from qifu.engine.rules.compiler import flags_and_values_sql
from qifu.engine.rules.context import SOURCES, aggregates_sql, context_sql, transpile
from qifu.engine.rules.findings import columns_needed

SPARK_TYPES = {"VARCHAR": "STRING", "DOUBLE": "DOUBLE", "INTEGER": "INT", "BOOLEAN": "BOOLEAN", "DATE": "DATE",
               "TIMESTAMP": "TIMESTAMP"}


def session(master: str = "local[2]"):
    """A Spark session bound to loopback (without SPARK_LOCAL_IP it binds the external interface)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .appName("qifu-check")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def _year_filters(year: int) -> dict[str, str]:
    from qifu.engine.rules.duckdb_engine import year_filters

    return {k: transpile(f"SELECT 1 WHERE {v}", "spark").split(" WHERE ", 1)[1] for k, v in year_filters(year).items()}


def register_sources(spark, paths: dict[str, str], year: int) -> None:
    filters = _year_filters(year)
    for name, columns in SOURCES.items():
        df = spark.read.parquet(paths[name])
        df = df.selectExpr(*[f"CAST({c} AS {SPARK_TYPES[t]}) AS {c}" for c, t in columns.items()])
        if name in filters:
            df = df.where(filters[name])
        df.cache().createOrReplaceTempView(name)


def run(spark, paths: dict[str, str], year: int, rules) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, pa.Table]]:
    register_sources(spark, paths, year)
    aggregates = {}
    for name, sql in aggregates_sql(year).items():
        df = spark.sql(transpile(sql, "spark")).cache()
        df.createOrReplaceTempView(name)
        aggregates[name] = df
    ctx = spark.sql(transpile(context_sql(year), "spark")).cache()
    ctx.createOrReplaceTempView("ctx")
    flags_sql, values_sql = flags_and_values_sql(list(rules), "spark")
    spark.sql(flags_sql).cache().createOrReplaceTempView("flags")
    hits = pl.from_arrow(spark.sql(values_sql).toArrow())
    needed = sorted(columns_needed(rules) | {"uscc", "revision"})
    cols = [c for c in needed if c in ctx.columns]
    ctx_rows = pl.from_arrow(
        spark.sql(f"SELECT {', '.join(cols)} FROM ctx WHERE uscc IN (SELECT uscc FROM flags)").toArrow()
    )
    agg_tables = {name: df.toArrow() for name, df in aggregates.items()}
    return _normalise(hits), ctx_rows, agg_tables


def _normalise(hits: pl.DataFrame) -> pl.DataFrame:
    return hits.select(
        pl.col("uscc").cast(pl.Utf8), pl.col("report_year").cast(pl.Int64), pl.col("rule_key").cast(pl.Utf8),
        *[pl.col(c).cast(pl.Float64) for c in ("v1", "v2", "v3", "suggestion")],
    )


def run_local(data: dict[str, pa.Table | str], year: int, rules, master: str = "local[2]"):
    """Spark in local mode over the sources (Parquet paths, or Arrow tables written to Parquet first)."""
    with tempfile.TemporaryDirectory(prefix="qifu-spark-") as tmp:
        paths = {}
        for name in SOURCES:
            src = data.get(name)
            if isinstance(src, str):
                paths[name] = src
            else:
                path = Path(tmp) / f"{name}.parquet"
                pq.write_table(src if src is not None else _empty(name), path)
                paths[name] = str(path)
        spark = session(master)
        return run(spark, paths, year, rules)


def _empty(name: str) -> pa.Table:
    types = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "INTEGER": pa.int32(), "BOOLEAN": pa.bool_(),
             "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us")}
    return pa.table({c: pa.array([], type=types[t]) for c, t in SOURCES[name].items()})


def main(argv: list[str] | None = None) -> None:
    """spark-submit entry point: findings (without messages) as Parquet, for a national batch."""
    from qifu.engine.rules.findings import render
    from qifu.engine.rules.loader import load_rules

    p = argparse.ArgumentParser(description="qifu rule check on Spark")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--input", required=True, help="folder with the six source relations as Parquet")
    p.add_argument("--output", required=True, help="findings as Parquet")
    p.add_argument("--master", default=None)
    a = p.parse_args(argv)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("qifu-check").getOrCreate() if a.master is None else session(a.master)
    rules = load_rules()
    paths = {name: f"{a.input.rstrip('/')}/{name}.parquet" for name in SOURCES}
    hits, ctx_rows, _ = run(spark, paths, a.year, rules)
    render(hits, ctx_rows, rules).write_parquet(a.output)


if __name__ == "__main__":
    main()
