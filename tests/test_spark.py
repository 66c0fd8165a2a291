"""Spark (local mode, loopback only) finds exactly what DuckDB finds, on a synthetic county."""

from __future__ import annotations

import math
import shutil

import pytest

from qifu.engine.rules import duckdb_engine, spark_engine
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
