"""The land-efficiency evaluation engine, every definition of contract v1.1 §1.10 worked by hand
on a few firms, the method validator's errors, DuckDB–Spark parity, and one firm's sheet in
Python held to the SQL on every firm of a county."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from qifu.engine.land import evaluate, method, sheet

METHOD = """
name: 测试方法
year: 2025
large_mu: 3
cap: 2.0
classes: {A: 0.25, B: 0.70, C: 0.95, D: 1.00}
groups:
  above:
    tax_per_mu:               {weight: 30, benchmark: 24}
    value_added_per_mu:       {weight: 20, benchmark: 100}
    value_added_per_energy:   {weight: 20, benchmark: 2}
    value_added_per_emission: {weight: 10, benchmark: 160, missing: group_average}
    labour_productivity:      {weight: 10, benchmark: 25}
    rd_share:                 {weight: 10, benchmark: 4}
  below_large:
    tax_per_mu:  {weight: 50, benchmark: 10}
    tax_per_kwh: {weight: 50, benchmark: 0.05}
  below_small:
    tax_per_mu:  {weight: 50, benchmark: 5}
    tax_per_kwh: {weight: 50, benchmark: 0.05}
  tenant:
    tax_per_mu:  {weight: 50, benchmark: 4}
    tax_per_kwh: {weight: 50, benchmark: 0.05}
"""
EXAMPLE = Path(__file__).resolve().parent.parent / "src" / "qifu" / "data" / "land" / "method-example.yaml"
COLS = ["uscc", "year", "above_threshold", "evaluated_tax", "electricity", "value_added", "main_revenue", "rd_spend",
        "energy_tce", "emissions", "avg_employees", "veto", "exempt"]


def indicators(rows: list[dict]) -> pa.Table:
    full = [{c: r.get(c, 2025 if c == "year" else False if c == "above_threshold" else None) for c in COLS}
            for r in rows]
    types = {"uscc": pa.string(), "year": pa.int64(), "above_threshold": pa.bool_(), "veto": pa.string(),
             "exempt": pa.string()}
    return pa.table({c: pa.array([r[c] for r in full], type=types.get(c, pa.float64())) for c in COLS})


def parcels(rows: list[tuple[str, str, str, float]]) -> pa.Table:
    return pa.table({"parcel_id": [r[0] for r in rows], "uscc": [r[1] for r in rows], "role": [r[2] for r in rows],
                     "area_mu": pa.array([r[3] for r in rows], type=pa.float64())})


def run(rows, land, text=METHOD) -> dict[str, dict]:
    m = method.parse(text)
    return {r["uscc"]: r for r in evaluate.run_duckdb(m, indicators(rows), parcels(land)).to_pylist()}


def test_groups_and_areas():
    rows = [{"uscc": u, "evaluated_tax": 10.0, "electricity": 100.0, "above_threshold": u == "ABOVE"}
            for u in ("ABOVE", "LARGE", "EXACTLY3", "SMALL", "TENANT", "NOLAND", "OWNRENT")]
    land = [("P1", "ABOVE", "owner", 10.0), ("P9", "ABOVE", "tenant", 5.0),  # above: owned + rented
            ("P2", "LARGE", "owner", 4.0), ("P2", "LARGE", "tenant", 9.0),  # owns ≥ 3: its owned area only
            ("P3", "EXACTLY3", "owner", 1.5), ("P4", "EXACTLY3", "owner", 1.5),
            ("P5", "SMALL", "owner", 2.0), ("P6", "TENANT", "tenant", 2.5), ("P7", "OWNRENT", "owner", 0.5),
            ("P7", "OWNRENT", "tenant", 8.0)]
    r = run(rows, land)
    assert {u: (x["group"], x["area_mu"]) for u, x in r.items()} == {
        "ABOVE": ("above", 15.0), "LARGE": ("below_large", 4.0), "EXACTLY3": ("below_large", 3.0),
        "SMALL": ("below_small", 2.0), "TENANT": ("tenant", 2.5), "NOLAND": (None, None),
        "OWNRENT": ("below_small", 0.5)}
    assert r["NOLAND"]["note"] == "无用地信息" and r["NOLAND"]["class"] is None and r["NOLAND"]["score"] is None


def test_each_indicator_points_cap_and_a_zero_divisor():
    firm = {"uscc": "F", "above_threshold": True, "evaluated_tax": 120.0, "value_added": 1000.0, "energy_tce": 250.0,
            "emissions": 5.0, "avg_employees": 40.0, "rd_spend": 30.0, "main_revenue": 0.0, "electricity": 800.0}
    r = run([firm], [("P", "F", "owner", 10.0)])["F"]
    assert r["points_tax_per_mu"] == pytest.approx(12 / 24 * 30)  # 120 ÷ 10 mu = 12
    assert r["points_value_added_per_mu"] == pytest.approx(100 / 100 * 20)  # 1000 ÷ 10 mu = 100
    assert r["points_value_added_per_energy"] == pytest.approx(4 / 2 * 20)  # 1000 ÷ 250 = 4 → 40 = the cap 2 × 20
    assert r["points_value_added_per_emission"] == pytest.approx(min(200 / 160 * 10, 20))
    assert r["points_labour_productivity"] == pytest.approx(min(25 / 25 * 10, 20))
    assert r["points_rd_share"] == 0  # main revenue 0: a zero divisor is a missing value, 0 points
    assert r["points_tax_per_kwh"] is None  # not an indicator of this group
    assert r["score"] == pytest.approx(sum(r[f"points_{n}"] or 0 for n in evaluate.INDICATORS))


def test_points_are_clamped_at_zero_and_at_the_cap():
    rows = [{"uscc": "NEG", "evaluated_tax": -5.0, "electricity": 100.0},
            {"uscc": "HUGE", "evaluated_tax": 1000.0, "electricity": 100.0}]
    r = run(rows, [("P1", "NEG", "owner", 5.0), ("P2", "HUGE", "owner", 5.0)])
    assert r["NEG"]["points_tax_per_mu"] == 0 and r["NEG"]["points_tax_per_kwh"] == 0
    assert r["HUGE"]["points_tax_per_mu"] == 100 and r["HUGE"]["points_tax_per_kwh"] == 100  # 2 × 50
    uncapped = run(rows, [("P1", "NEG", "owner", 5.0), ("P2", "HUGE", "owner", 5.0)], METHOD.replace("cap: 2.0\n", ""))
    assert uncapped["HUGE"]["points_tax_per_mu"] == pytest.approx(200 / 10 * 50)


def test_missing_group_average_counts_vetoed_and_exempt_firms_and_is_zero_when_none_has_it():
    base = {"above_threshold": True, "evaluated_tax": 10.0, "value_added": 100.0}
    rows = [{**base, "uscc": "E1", "emissions": 1.0},  # 100/1 = 100 → 100/160 × 10 = 6.25
            {**base, "uscc": "E2", "emissions": 2.0, "veto": "重大环境事故"},  # 50 → 3.125, vetoed but counted
            {**base, "uscc": "E3", "emissions": 0.5, "exempt": "公共事业"},  # 200 → 12.5, exempt but counted
            {**base, "uscc": "NONE"}]  # no emissions: the mean of the three
    land = [(f"P{i}", u, "owner", 5.0) for i, u in enumerate(("E1", "E2", "E3", "NONE"))]
    r = run(rows, land)
    assert r["NONE"]["points_value_added_per_emission"] == pytest.approx((6.25 + 3.125 + 12.5) / 3)
    # a plain missing indicator earns 0 (labour productivity has no avg_employees anywhere)
    assert r["NONE"]["points_labour_productivity"] == 0
    alone = run([{**base, "uscc": "NONE"}], [("P", "NONE", "owner", 5.0)])
    assert alone["NONE"]["points_value_added_per_emission"] == 0


def test_ranks_ties_by_credit_code_and_classes_by_ceil_cut_offs():
    rows = [{"uscc": f"T{i:02d}", "evaluated_tax": float(tax), "electricity": 1000.0}
            for i, tax in enumerate([50, 40, 40, 30, 20, 10, 5])]  # T01 and T02 tie
    land = [(f"P{i}", f"T{i:02d}", "owner", 5.0) for i in range(7)]
    r = run(rows, land)
    assert [r[f"T{i:02d}"]["rank"] for i in range(7)] == [1, 2, 3, 4, 5, 6, 7]
    # n = 7: A if k ≤ ceil(0.25·7) = 2; B if ≤ ceil(0.70·7) = 5; C if ≤ ceil(0.95·7) = 7
    assert [r[f"T{i:02d}"]["class"] for i in range(7)] == ["A", "A", "B", "B", "B", "C", "C"]


@pytest.mark.parametrize("n, expected", [
    (1, "A"), (2, "AB"), (3, "ABB"), (4, "ABBC"), (10, "AAABBBBCCC"), (20, "AAAAABBBBBBBBBCCCCCD"),
])
def test_ceil_cut_offs_on_small_groups_use_exact_decimals(n, expected):
    rows = [{"uscc": f"S{i:03d}", "evaluated_tax": float(1000 - i), "electricity": 1e9} for i in range(n)]
    land = [(f"P{i}", f"S{i:03d}", "owner", 5.0) for i in range(n)]
    r = run(rows, land)
    assert "".join(r[f"S{i:03d}"]["class"] for i in range(n)) == expected


def test_exact_decimal_share_0_70_of_100_is_70():
    rows = [{"uscc": f"X{i:03d}", "evaluated_tax": float(1000 - i), "electricity": 1e9} for i in range(100)]
    r = run(rows, [(f"P{i}", f"X{i:03d}", "owner", 5.0) for i in range(100)])
    assert r["X069"]["class"] == "B" and r["X070"]["class"] == "C"  # rank 70 is B, rank 71 is C


def test_veto_and_exemption_are_not_ranked():
    rows = [{"uscc": "V", "evaluated_tax": 99.0, "electricity": 100.0, "veto": "重大安全事故"},
            {"uscc": "X", "evaluated_tax": 99.0, "electricity": 100.0, "exempt": "公用事业"},
            {"uscc": "R1", "evaluated_tax": 10.0, "electricity": 100.0},
            {"uscc": "R2", "evaluated_tax": 5.0, "electricity": 100.0}]
    r = run(rows, [(f"P{i}", u, "owner", 5.0) for i, u in enumerate("V X R1 R2".split())])
    assert (r["V"]["class"], r["V"]["rank"], r["V"]["note"]) == ("D", None, "否决：重大安全事故")
    assert (r["X"]["class"], r["X"]["rank"], r["X"]["note"]) == (None, None, "不参评：公用事业（按B类管理）")
    assert r["V"]["score"] > 0 and (r["R1"]["rank"], r["R2"]["rank"]) == (1, 2)  # n = 2: the vetoed don't count
    assert (r["R1"]["class"], r["R2"]["class"]) == ("A", "B")


def test_a_group_the_method_does_not_have_is_not_evaluated():
    text = METHOD.split("  tenant:")[0]
    r = run([{"uscc": "T", "evaluated_tax": 1.0, "electricity": 10.0}], [("P", "T", "tenant", 1.0)], text)
    assert (r["T"]["group"], r["T"]["class"], r["T"]["note"]) == (None, None, evaluate.NO_GROUP)


@pytest.mark.parametrize("change, error", [
    (("weight: 30, benchmark: 24}", "weight: 31, benchmark: 24}"), "groups.above：权重之和应为 100，现为 101"),
    (("benchmark: 0.05}\n  below_small", "benchmark: 0}\n  below_small"), "benchmark"),
    (("tax_per_kwh: {weight: 50, benchmark: 0.05}\n  below_small", "tax_per_kwwh: {weight: 50, benchmark: 0.05}\n  below_small"),
     "没有这个指标：tax_per_kwwh"),
    (("C: 0.95, D: 1.00", "C: 0.60, D: 1.00"), "逐档增大"),
    (("C: 0.95, D: 1.00", "C: 0.95, D: 0.99"), "D 为 1"),
    (("  tenant:", "  renters:"), "没有这个分组：renters"),
    (("missing: group_average", "missing: mean"), "missing"),
    (("year: 2025", "year: 二〇二五"), "year"),
])
def test_the_validator_names_the_file_and_the_place(change, error):
    with pytest.raises(method.MethodError) as exc:
        method.parse(METHOD.replace(*change), "cixi-2025.yaml")
    assert str(exc.value).startswith("cixi-2025.yaml：") and error in str(exc.value), str(exc.value)


def test_a_changed_method_is_a_new_version():
    a, b = method.parse(METHOD), method.parse(METHOD.replace("benchmark: 24}", "benchmark: 25}"))
    assert a.version != b.version and method.parse(METHOD).version == a.version


def _county_tables(small_county):
    import polars as pl

    ind = pl.read_csv(small_county / "indicators.csv", infer_schema=False).with_columns(
        pl.col("year").cast(pl.Int64), (pl.col("above_threshold") == "true").alias("above_threshold"),
        *(pl.col(c).cast(pl.Float64) for c in COLS[3:11]))
    par = pl.read_csv(small_county / "parcels.csv", infer_schema=False).with_columns(pl.col("area_mu").cast(pl.Float64))
    return ind.select(COLS).to_arrow(), par.select("parcel_id", "uscc", "role", "area_mu").to_arrow()


def test_one_firms_sheet_in_python_agrees_with_the_sql_for_every_firm(small_county):
    m = method.load(EXAMPLE)
    ind, par = _county_tables(small_county)
    results = {r["uscc"]: r for r in evaluate.run_duckdb(m, ind, par).to_pylist()}
    assert len(results) > 50
    own: dict[str, list[tuple[str, float]]] = {}
    for r in par.to_pylist():
        own.setdefault(r["uscc"], []).append((r["role"], r["area_mu"]))
    rows = [r for r in ind.to_pylist() if r["year"] == 2025]
    # each group's mean points per indicator, from the firms that have a value (Python's own)
    sheets = {r["uscc"]: sheet.compute(m, r, own.get(r["uscc"], [])) for r in rows}
    averages: dict[str, dict[str, list[float]]] = {}
    for s in sheets.values():
        for name, v in s.values.items():
            if v is not None:
                averages.setdefault(s.group, {}).setdefault(name, []).append(s.points[name])
    means = {g: {n: sum(v) / len(v) for n, v in d.items()} for g, d in averages.items()}
    for r in rows:
        s = sheet.compute(m, r, own.get(r["uscc"], []), means.get(sheet.area_and_group(
            m, r["above_threshold"], own.get(r["uscc"], []))[0]))
        sql = results[r["uscc"]]
        assert (s.group, s.note) == (sql["group"], sql["note"]), r["uscc"]
        if s.score is None:
            assert sql["score"] is None
            continue
        assert s.score == pytest.approx(sql["score"], rel=1e-9) and s.area_mu == pytest.approx(sql["area_mu"])
        for name, p in s.points.items():
            assert p == pytest.approx(sql[f"points_{name}"], rel=1e-9, abs=1e-12), (r["uscc"], name)


@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (installed by .ci/run)")
def test_spark_gives_the_same_evaluation_as_duckdb(small_county, tmp_path):
    import pyarrow.parquet as pq

    from qifu.engine.land.spark import run_local

    m = method.load(EXAMPLE)
    ind, par = _county_tables(small_county)
    pq.write_table(ind, tmp_path / "indicators.parquet")
    pq.write_table(par, tmp_path / "parcels.parquet")
    duck = sorted(evaluate.run_duckdb(m, ind, par).to_pylist(), key=lambda r: r["uscc"])
    spark = sorted(run_local(m, {"indicators": str(tmp_path / "indicators.parquet"),
                                 "parcels": str(tmp_path / "parcels.parquet")}).to_pylist(), key=lambda r: r["uscc"])
    assert len(duck) == len(spark) > 50
    for a, b in zip(duck, spark):
        assert {k: a[k] for k in ("uscc", "group", "rank", "class", "note")} == \
            {k: b[k] for k in ("uscc", "group", "rank", "class", "note")}
        for k, v in a.items():
            if isinstance(v, float):
                assert math.isclose(v, b[k], rel_tol=1e-9), (a["uscc"], k)
