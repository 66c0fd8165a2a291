"""The synthetic county: deterministic, realistic in shape, importable, and labelled."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from qifu.engine import uscc
from qifu.engine.synth import county

FILES = ("registry", "reports", "shareholders", "tax", "social", "reminders")
CATEGORIES = {"ID", "CP", "FM", "AR", "UM", "LC", "XS", "YY", "PO", "SP"}


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    county.write(tmp_path / "a", entities=400, seed=5)
    county.write(tmp_path / "b", entities=400, seed=5)
    county.write(tmp_path / "c", entities=400, seed=6)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["registry.csv"] != _digest(tmp_path / "c")["registry.csv"]


def test_type_mix_townships_and_codes(small_county):
    reg = pl.read_csv(small_county / "registry.csv", infer_schema=False)
    share = reg["entity_type"].value_counts(normalize=True)
    shares = dict(zip(share["entity_type"], share["proportion"]))
    assert shares["enterprise"] == pytest.approx(0.42, abs=0.04)
    assert shares["individual"] == pytest.approx(0.55, abs=0.04)
    assert shares["cooperative"] == pytest.approx(0.03, abs=0.015)
    assert reg["town"].n_unique() == 19
    assert reg["uscc"].n_unique() == reg.height
    assert all(uscc.is_valid(c) for c in reg["uscc"])


def test_sizes_are_heavy_tailed_and_finances_consistent(small_county):
    rep = pl.read_csv(small_county / "reports.csv", infer_schema_length=0).filter(pl.col("report_year") == "2024")
    ent = rep.filter(pl.col("total_assets") != "").select(
        pl.col("employees", "total_assets", "total_liabilities", "total_equity", "total_revenue",
               "main_business_revenue").cast(pl.Float64)
    )
    emp = ent["employees"]
    assert emp.quantile(0.99) > 8 * emp.median()  # a long tail of large firms
    assert ((ent["total_assets"] - ent["total_liabilities"] - ent["total_equity"]).abs() < 0.011).all()
    assert (ent["main_business_revenue"] <= ent["total_revenue"]).all()


def test_three_seasons_of_reports_and_blanket_reminders(small_county):
    rep = pl.read_csv(small_county / "reports.csv", infer_schema=False)
    assert sorted(rep["report_year"].unique()) == ["2023", "2024", "2025"]
    rem = pl.read_csv(small_county / "reminders.csv", infer_schema=False)
    assert set(rem["channel"]) == {"sms", "call"}
    assert set(rem["status"]) == {"delivered", "failed", "unknown"}
    days = set(rem["sent_at"].str.slice(5, 5))
    assert {"03-01", "04-15", "05-15", "06-01", "06-15", "06-20", "06-25"} == days
    # a filed report is never preceded, on the same season, by a reminder after its filing date
    filed = rep.filter(pl.col("report_year") == "2024").select("uscc", filed=pl.col("filed_at").str.slice(0, 10))
    late = rem.filter(pl.col("sent_at").str.starts_with("2025")).join(filed, on="uscc").filter(
        pl.col("sent_at").str.slice(0, 10) > pl.col("filed")
    )
    assert late.height == 0


def test_behaviour_model_is_written_with_every_archetype(small_county):
    beh = pl.read_csv(small_county / "behaviour.csv", infer_schema=False)
    from qifu.engine.synth.behaviour import ARCHETYPES

    assert set(beh["archetype_2025"]) == set(ARCHETYPES)
    assert beh.height == 1500


def test_injected_errors_cover_every_rule_category(small_county):
    labels = pl.read_csv(small_county / "injected_errors.csv", infer_schema=False)
    assert set(labels["category"]) == CATEGORIES
    assert labels.filter(pl.col("fields") == "").height == 0
    reports = pl.read_csv(small_county / "reports.csv", infer_schema=False).filter(pl.col("report_year") == "2025")
    assert set(labels["uscc"]) <= set(reports["uscc"])
    # one injected error per report
    assert labels.select("uscc").n_unique() == labels.height


def test_injected_yuan_error_is_ten_thousand_times_last_year(small_county):
    labels = pl.read_csv(small_county / "injected_errors.csv", infer_schema=False).filter(
        pl.col("error_class") == "yuan_for_wanyuan"
    )
    assert labels.height > 0
    for row in labels.iter_rows(named=True):
        assert float(row["injected"]) == pytest.approx(float(row["original"]) * 10000, rel=1e-6)


@pytest.mark.django_db
def test_every_file_imports_cleanly(small_county):
    from qifu.imports.actions import import_file
    from qifu.reports.models import AnnualReport

    results = {kind: import_file(kind, small_county / f"{kind}.csv") for kind in FILES}
    rep = pl.read_csv(small_county / "reports.csv", infer_schema=False)
    assert results["reports"].inserted == rep.height == AnnualReport.objects.count()
    assert all(r.warnings == [] for r in results.values())
