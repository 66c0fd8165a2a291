"""The national engine: the same rules on Apache Spark, over Parquet, with all the work on the
executors.

``findings`` is the whole check as one Spark plan: the sources read from Parquet, the context
and county aggregates (the DuckDB SQL transpiled by sqlglot), the rules' flags and values
(compiled for the ``spark`` dialect from the same trees, carrying the context columns the
messages quote), and the messages rendered by ``findings.render`` over Arrow batches on the
executors (``mapInArrow``). ``write`` leaves the findings to the executors as Parquet
partitioned by rule, at any Hadoop-compatible path (``hdfs://``, ``s3a://``, ``file://``);
nothing proportional to the data comes back to the driver. ``run_local`` collects a county's
findings (its output, not its data) for ``qifu check --engine spark``.

For a cluster (docs/rules.md, "Spark on a cluster")::

    spark-submit --master yarn --archives qifu-env.tar.gz#env \\
        --conf spark.pyspark.python=./env/bin/python \\
        $(python -c 'import qifu.engine.rules.spark_engine as m; print(m.__file__)') \\
        --year 2025 --input hdfs:///qifu/analytics --output hdfs:///qifu/findings-2025

The input folder holds the six source relations as Parquet (``registry.parquet``,
``reports.parquet`` …: what ``qifu`` keeps in ``$QIFU_DATA_DIR/analytics``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from qifu.engine.rules.compiler import columns_read, flags_and_values_sql
from qifu.engine.rules.context import AGGREGATES, SOURCES, aggregates_sql, context_sql, needs, transpile
from qifu.engine.rules.findings import FINDING_SCHEMA, columns_needed, render

SPARK_TYPES = {"VARCHAR": "STRING", "DOUBLE": "DOUBLE", "INTEGER": "INT", "BOOLEAN": "BOOLEAN", "DATE": "DATE",
               "TIMESTAMP": "TIMESTAMP"}


def session(master: str = "local[2]"):
    """A Spark session bound to loopback (without SPARK_LOCAL_IP it binds the external interface)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers render messages with qifu's code
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


def register_sources(spark, paths: dict[str, str], year: int, names=None) -> None:
    filters = _year_filters(year)
    for name, columns in SOURCES.items():
        if names is not None and name not in names:
            continue
        df = spark.read.parquet(paths[name])
        df = df.selectExpr(*[f"CAST({c} AS {SPARK_TYPES[t]}) AS {c}" for c, t in columns.items()])
        if name in filters:
            df = df.where(filters[name])
        # not cached: each use reads only the columns it needs from Parquet (a cache would hold
        # every column of every report)
        df.createOrReplaceTempView(name)


def context_columns(rules) -> frozenset[str]:
    """The context columns the rules' conditions, values and suggestions read and their
    messages quote: all a Spark run of these rules builds."""
    return columns_read(rules) | frozenset(columns_needed(rules))


def _plan(spark, paths: dict[str, str], year: int, rules, carry: bool):
    """The sources, aggregates and context as views; the hits as a DataFrame (with the context
    columns the messages quote when ``carry``)."""
    # Only the context the rules and their messages read: each join of the full context is a
    # shuffle of a widening row on Spark (issue 18; the DuckDB engine keeps the whole context).
    columns = context_columns(rules)
    _, aggregates, sources = needs(columns)
    register_sources(spark, paths, year, sources)
    for name, sql in aggregates_sql(year).items():
        if name in aggregates:
            spark.sql(transpile(sql, "spark")).cache().createOrReplaceTempView(name)  # cached on the executors
    ctx = spark.sql(transpile(context_sql(year, columns=columns), "spark")).cache()
    ctx.createOrReplaceTempView("ctx")
    quoted = tuple(sorted(columns_needed(rules) & set(ctx.columns))) if carry else ()
    flags_sql, values_sql = flags_and_values_sql(list(rules), "spark", carry=quoted)
    spark.sql(flags_sql).cache().createOrReplaceTempView("flags")
    return spark.sql(values_sql)


def findings(spark, paths: dict[str, str], year: int, rules):
    """The findings (contract §2.1 and ``rule_key``) as a Spark DataFrame, computed and rendered
    on the executors."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    hits = _plan(spark, paths, year, rules, carry=True)
    schema = StructType([StructField(name, LongType() if name == "report_year" else StringType())
                         for name in FINDING_SCHEMA])
    return hits.mapInArrow(_renderer(tuple(rules)), schema)


def _renderer(rules):
    target = pa.schema([(name, pa.int64() if name == "report_year" else pa.string()) for name in FINDING_SCHEMA])

    def render_batches(batches):
        for batch in batches:
            if batch.num_rows == 0:
                continue
            out = render(_normalise(pl.from_arrow(pa.Table.from_batches([batch]))), None, rules)
            yield from out.to_arrow().cast(target).to_batches()

    return render_batches


def write(spark, paths: dict[str, str], year: int, rules, output: str) -> None:
    """The findings written by the executors as Parquet partitioned by rule."""
    findings(spark, paths, year, rules).write.mode("overwrite").partitionBy("rule_id").parquet(output)


def run(spark, paths: dict[str, str], year: int, rules) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, pa.Table]]:
    """The hits, the context rows of the flagged reports and the aggregates, collected: for
    comparing the engines on a county; ``findings`` is the path that scales."""
    hits_df = _plan(spark, paths, year, rules, carry=False)
    hits = pl.from_arrow(hits_df.toArrow())
    needed = sorted(columns_needed(rules) | {"uscc", "revision"})
    cols = [c for c in needed if c in spark.table("ctx").columns]
    ctx_rows = pl.from_arrow(
        spark.sql(f"SELECT {', '.join(cols)} FROM ctx WHERE uscc IN (SELECT uscc FROM flags)").toArrow()
    )
    _, used, _ = needs(context_columns(rules))
    agg_tables = {name: spark.table(name).toArrow() for name in AGGREGATES if name in used}
    return _normalise(hits), ctx_rows, agg_tables


def _normalise(hits: pl.DataFrame) -> pl.DataFrame:
    return hits.with_columns(
        pl.col("uscc").cast(pl.Utf8), pl.col("report_year").cast(pl.Int64), pl.col("rule_key").cast(pl.Utf8),
        *[pl.col(c).cast(pl.Float64) for c in ("v1", "v2", "v3", "suggestion")],
    )


def _paths(data: dict[str, pa.Table | str], tmp: str) -> dict[str, str]:
    paths = {}
    for name in SOURCES:
        src = data.get(name)
        if isinstance(src, str):
            paths[name] = src
        else:
            path = Path(tmp) / f"{name}.parquet"
            pq.write_table(src if src is not None else _empty(name), path)
            paths[name] = str(path)
    return paths


def run_local(data: dict[str, pa.Table | str], year: int, rules, master: str = "local[2]") -> pl.DataFrame:
    """A county's findings on Spark in local mode, over the sources (Parquet paths, or Arrow
    tables written to Parquet first), collected and in the DuckDB path's order."""
    with tempfile.TemporaryDirectory(prefix="qifu-spark-") as tmp:
        spark = session(master)
        found = findings(spark, _paths(data, tmp), year, rules).toArrow()
        return pl.from_arrow(found).cast(FINDING_SCHEMA).sort("uscc", "rule_key")


def _empty(name: str) -> pa.Table:
    types = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "INTEGER": pa.int32(), "BOOLEAN": pa.bool_(),
             "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us")}
    return pa.table({c: pa.array([], type=types[t]) for c, t in SOURCES[name].items()})


def main(argv: list[str] | None = None) -> None:
    """spark-submit entry point: the findings of a national batch, written by the executors."""
    from qifu.engine.rules.loader import load_rules

    p = argparse.ArgumentParser(description="qifu rule check on Spark")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--input", required=True, help="folder with the six source relations as Parquet")
    p.add_argument("--output", required=True, help="findings as Parquet, partitioned by rule_id")
    p.add_argument("--master", default=None)
    a = p.parse_args(argv)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("qifu-check").getOrCreate() if a.master is None else session(a.master)
    write(spark, input_paths(a.input), a.year, load_rules(), a.output)


def input_paths(folder: str) -> dict[str, str]:
    return {name: f"{folder.rstrip('/')}/{name}.parquet" for name in SOURCES}


if __name__ == "__main__":
    main()
