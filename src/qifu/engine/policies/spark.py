"""Policies on Spark (a province, the nation): the profile and each policy's statement are the
DuckDB SQL transpiled by sqlglot, over Parquet. ``write`` leaves the matches to the executors:
Parquet partitioned by policy, the budget rule applied there (the driver sees one number per
policy, its total); ``run_local`` returns the outcomes (a county's parity with DuckDB)."""

from __future__ import annotations

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


def write(spark, policies: list[Policy], year: int, paths: dict[str, str], output: str) -> dict[str, dict]:
    """§2.4 for every policy, written by the executors to ``output`` (any Hadoop-compatible
    path) as Parquet partitioned by ``policy_id``; returns each policy's totals (万元, before and
    after the budget rule) and count."""
    from functools import reduce

    from pyspark.sql import functions as F

    register(spark, year, paths)
    frames, totals = [], {}
    for p in policies:
        df = matches(spark, p).where("micro IS NOT NULL")
        n, total = df.agg(F.count("*"), F.sum("micro")).first()
        total = int(total or 0)
        budget = match.to_micro(p.budget) if p.budget is not None else None
        if budget is not None and total > budget:  # exact: whole millionths, in 38 digits
            df = df.withColumn("micro", F.expr(
                f"CAST(FLOOR(CAST(micro AS DECIMAL(38, 0)) * {budget} / {total * match.PER_YUAN}) AS BIGINT)"
                f" * {match.PER_YUAN}"))
        totals[p.id] = {"firms": n, "before_budget": match.decimal(total),
                        "scaled": budget is not None and total > budget}
        frames.append(df.select(F.lit(p.id).alias("policy_id"), "uscc", F.expr(
            "CAST(CAST(micro AS DECIMAL(26, 0)) / 1000000 AS DECIMAL(20, 6))").alias("amount"), "reason"))
    if frames:
        reduce(lambda a, b: a.unionByName(b), frames).write.mode("overwrite").partitionBy("policy_id").parquet(output)
    return totals


def run_local(policies: list[Policy], year: int, paths: dict[str, str]) -> list[match.Outcome]:
    """Every policy in one Spark job, the rows brought back (a county's parity with DuckDB)."""
    import polars as pl

    from qifu.engine.rules.spark_engine import session

    spark = session()
    register(spark, year, paths)
    if not policies:
        return []
    union = " UNION ALL ".join(f"SELECT {i} AS k, * FROM ({match.spark_sql(p)})" for i, p in enumerate(policies))
    parts = pl.from_arrow(spark.sql(union).toArrow()).partition_by("k", as_dict=True, include_key=False)
    empty = pl.DataFrame(schema=match.SCHEMA)
    return [match.finish(p, parts.get((i,), empty)) for i, p in enumerate(policies)]
