"""Policies on Spark (a province, the nation): the profile and each policy's statement are the
DuckDB SQL transpiled by sqlglot, over Parquet. ``write`` leaves the matches to the executors
(Parquet partitioned by policy: the budget rule needs each policy's total, one number, which
``totals`` returns); ``run_local`` returns the outcomes (a county's parity with DuckDB)."""

from __future__ import annotations

import sqlglot

from qifu.engine.policies import match, profile
from qifu.engine.policies.policy import Policy

SPARK = {"VARCHAR": "STRING", "DOUBLE": "DOUBLE", "INTEGER": "INT", "BOOLEAN": "BOOLEAN", "DATE": "DATE",
         "TIMESTAMP": "TIMESTAMP"}


def register(spark, year: int, paths: dict[str, str]) -> None:
    """Each source as a view with the profile's types (a missing source or column is empty), and
    the profile of ``year`` as the view ``profile``."""
    for name, columns in profile.SOURCES.items():
        path = paths.get(name)
        if path is None:
            cols = ", ".join(f"CAST(NULL AS {SPARK[t]}) AS `{c}`" for c, t in columns.items())
            spark.sql(f"SELECT {cols} WHERE FALSE").createOrReplaceTempView(name)
            continue
        df = spark.read.parquet(path)
        have = set(df.columns)
        df.selectExpr(*[f"CAST(`{c}` AS {SPARK[t]}) AS `{c}`" if c in have else f"CAST(NULL AS {SPARK[t]}) AS `{c}`"
                        for c, t in columns.items()]).createOrReplaceTempView(name)
    spark.sql(profile.transpiled(year, "spark")).createOrReplaceTempView("profile")


def matches(spark, policy: Policy):
    return spark.sql(match.spark_sql(policy))


def run_local(policies: list[Policy], year: int, paths: dict[str, str]) -> list[match.Outcome]:
    from qifu.engine.rules.spark_engine import session

    spark = session()
    register(spark, year, paths)
    return [match.finish(p, matches(spark, p).toArrow()) for p in policies]


def transpile(sql_text: str) -> str:
    return sqlglot.transpile(sql_text, read="duckdb", write="spark")[0]
