"""Spark (local mode, loopback only) finds exactly what DuckDB finds, on a synthetic county."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import polars as pl
import pytest

from qifu.engine.rules import duckdb_engine, spark_engine
from qifu.engine.rules.findings import FINDING_SCHEMA, columns_needed, render
from qifu.engine.rules.loader import load_rules

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (installed by .ci/run)")


@pytest.fixture(scope="module")
def county_parquet(small_county, tmp_path_factory):
    """The small county's contract files as the six source relations, in Parquet."""
    from qifu.engine.rules.parquet import contract_to_parquet

    return contract_to_parquet(small_county, tmp_path_factory.mktemp("parquet"))


def test_spark_and_duckdb_find_the_same(county_parquet):
    rules = load_rules()
    con = duckdb_engine.connect(county_parquet, year=2025)
    duck = duckdb_engine.run(con, 2025, rules)
    spark = spark_engine.session()
    hits, ctx_rows, aggregates = spark_engine.run(spark, county_parquet, 2025, rules)
    key = ["uscc", "rule_key"]
    a, b = duck.sort(key), hits.sort(key)
    assert a.height > 100
    assert a.select(key).equals(b.select(key))
    for col in ("v1", "v2", "v3", "suggestion"):
        for x, y in zip(a[col].to_list(), b[col].to_list()):
            assert (x is None and y is None) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), col
    assert set(aggregates) == {"agg_phone", "agg_email", "agg_address", "agg_fin", "agg_peer", "agg_industry"}
    assert set(ctx_rows["uscc"]) == set(hits["uscc"])


def test_a_few_rules_build_only_the_context_they_read_and_find_what_duckdb_finds(county_parquet):
    from qifu.engine.rules.context import needs

    rules = [r for r in load_rules() if r.id in ("AR-01", "AR-02", "AR-07", "CP-07")]
    joins, aggregates, sources = needs(spark_engine.context_columns(rules))
    assert joins == ["g"] and aggregates == [] and sources == ["reports", "registry"]
    spark = spark_engine.session()
    found = spark_engine.run_local(county_parquet, 2025, rules)
    assert "social_arrears" not in spark.table("ctx").columns and "phone_entity_count" not in spark.table("ctx").columns
    duck = duckdb_findings(county_parquet, rules)
    assert duck.height > 10 and duck.equals(found)


def duckdb_findings(county_parquet, rules) -> pl.DataFrame:
    con = duckdb_engine.connect(county_parquet, year=2025)
    duckdb_engine.build_context(con, 2025)
    carry = tuple(sorted(columns_needed(rules) & {r[0] for r in con.execute("DESCRIBE ctx").fetchall()}))
    return render(duckdb_engine.evaluate(con, rules, carry=carry), None, rules)


def test_spark_renders_byte_for_byte_the_findings_duckdb_renders(county_parquet):
    rules = load_rules()
    duck = duckdb_findings(county_parquet, rules)
    spark = spark_engine.run_local(county_parquet, 2025, rules)
    assert duck.height > 100 and duck.schema == spark.schema == pl.Schema(FINDING_SCHEMA)
    assert duck["rule_id"].n_unique() > 20
    assert duck.equals(spark)


@pytest.fixture
def no_collect(monkeypatch):
    """Every way a DataFrame's rows come back to the driver, made to fail."""
    from pyspark.sql import DataFrame

    def refuse(self, *args, **kwargs):
        raise AssertionError("rows collected to the driver")

    for name in ("collect", "toArrow", "toPandas", "toLocalIterator", "take", "head", "first", "tail", "show"):
        monkeypatch.setattr(DataFrame, name, refuse)


def test_the_national_path_leaves_the_findings_to_the_executors(county_parquet, tmp_path, no_collect):
    rules = load_rules()
    spark = spark_engine.session()
    out = tmp_path / "findings"
    spark_engine.write(spark, county_parquet, 2025, rules, f"file://{out}")
    partitions = sorted(p.name for p in out.iterdir() if p.name.startswith("rule_id="))
    written = pl.read_parquet(out / "**" / "*.parquet", hive_partitioning=True)
    duck = duckdb_findings(county_parquet, rules)
    assert len(partitions) == duck["rule_id"].n_unique()
    got = written.select(list(FINDING_SCHEMA)).cast(FINDING_SCHEMA).sort("uscc", "rule_key")
    assert got.equals(duck)
    # the plan: the messages are made by the Python workers over Arrow batches, after the rules
    plan = spark_engine.findings(spark, county_parquet, 2025, rules)._jdf.queryExecution().executedPlan().toString()
    assert "MapInArrow" in plan and "CollectLimit" not in plan


@pytest.mark.django_db
def test_qifu_check_on_spark_stores_and_writes_what_duckdb_does(checked_county, tmp_path):
    from qifu.checks.actions import run_check

    duck = run_check(2025, engine="duckdb", out=tmp_path / "duck.csv")
    spark = run_check(2025, engine="spark", out=tmp_path / "spark.csv")
    assert spark.findings.height > 100 and spark.findings.equals(duck.findings)
    assert (tmp_path / "spark.csv").read_bytes() == (tmp_path / "duck.csv").read_bytes()
    assert (spark.run.findings, spark.run.rule_counts) == (duck.run.findings, duck.run.rule_counts)
    assert spark.run.new_findings == 0  # the same findings: nothing new, nothing resolved


def test_qifu_check_on_a_parquet_folder_writes_findings_by_rule(county_parquet, tmp_path):
    import os
    import subprocess
    import sys

    folder = Path(county_parquet["reports"]).parent
    out = tmp_path / "findings"
    env = {k: v for k, v in os.environ.items() if k != "QIFU_DATABASE_URL"} | {"QIFU_DATA_DIR": str(tmp_path / "var")}
    done = subprocess.run([sys.executable, "-m", "qifu", "check", "--year", "2025", "--engine", "spark",
                           "--input", str(folder), "--output", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    duck = duckdb_findings(county_parquet, load_rules())
    assert f"问题 {duck.height} 个" in done.stdout
    written = pl.read_parquet(out / "**" / "*.parquet", hive_partitioning=True)
    assert written.select(list(FINDING_SCHEMA)).cast(FINDING_SCHEMA).sort("uscc", "rule_key").equals(duck)
    assert not (tmp_path / "var").exists()  # no database: the folder is all it reads
    for argv, reason in (
        (["--input", str(folder), "--output", str(out)], "--engine spark"),
        (["--engine", "spark", "--input", str(tmp_path), "--output", str(out)], "缺少"),
        (["--engine", "spark", "--input", str(folder)], "--output"),
    ):
        done = subprocess.run([sys.executable, "-m", "qifu", "check", "--year", "2025", *argv], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and reason in done.stderr and "Traceback" not in done.stderr, argv
