"""The evaluation on Spark (a province): the same SQL as DuckDB's, transpiled by sqlglot
(``evaluate.spark_sql``), over Parquet. ``write`` leaves the result to the executors, as
Parquet partitioned by group, at any Hadoop-compatible path; ``run_local`` returns it as Arrow
(a county's parity with DuckDB)."""

from __future__ import annotations

import pyarrow as pa

from qifu.engine.land.evaluate import INPUTS, spark_sql
from qifu.engine.land.method import Method

SPARK = {pa.string(): "STRING", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN", pa.float64(): "DOUBLE"}
TYPES = {name: {f.name: SPARK[f.type] for f in schema} for name, schema in INPUTS.items()}


def register(spark, paths: dict[str, str]) -> None:
    for name, columns in TYPES.items():
        df = spark.read.parquet(paths[name])
        df.selectExpr(*[f"CAST({c} AS {t}) AS {c}" for c, t in columns.items()]).createOrReplaceTempView(name)


def result(spark, method: Method, paths: dict[str, str]):
    register(spark, paths)
    return spark.sql(spark_sql(method))


def write(spark, method: Method, paths: dict[str, str], output: str) -> None:
    result(spark, method, paths).write.mode("overwrite").partitionBy("group").parquet(output)


def run_local(method: Method, paths: dict[str, str]) -> pa.Table:
    from qifu.engine.rules.spark_engine import session

    return result(session(), method, paths).toArrow()
