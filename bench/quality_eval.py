"""Score findings against a synthetic county's labelled errors.

    python bench/quality_eval.py FINDINGS.csv COUNTY_DIR [--year 2025]

A labelled error counts as detected when a finding of severity medium or above, for the same
entity and year, names one of the label's fields. Clean reports (no label) are counted for
block/high findings: the nuisance a filer who did nothing wrong would get.
Targets (issue 3): recall >= 98% overall and >= 90% per class; block/high on <= 0.5% of clean reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

SERIOUS = ["block", "high", "medium"]


def evaluate(findings: pl.DataFrame, labels: pl.DataFrame, reports: pl.DataFrame, year: int) -> dict:
    findings = findings.with_columns(pl.col("report_year").cast(pl.Int64))
    labels = labels.with_columns(pl.col("report_year").cast(pl.Int64)).with_row_index("label_id")
    serious = findings.filter(pl.col("severity").is_in(SERIOUS)).with_columns(pl.col("fields").str.split(";").alias("ff"))
    lab = labels.with_columns(pl.col("fields").str.split(";").alias("lf"))
    joined = lab.join(serious, on=["uscc", "report_year"], how="inner")
    detected = joined.filter(pl.col("ff").list.set_intersection(pl.col("lf")).list.len() > 0)
    det_ids = set(detected["label_id"].to_list())
    lab = lab.with_columns(pl.col("label_id").is_in(list(det_ids)).alias("detected"))
    per_class = (
        lab.group_by("category", "error_class")
        .agg(pl.len().alias("injected"), pl.col("detected").sum().alias("detected"))
        .with_columns((pl.col("detected") / pl.col("injected")).alias("recall"))
        .sort("category", "error_class")
    )
    rules_hit = (
        detected.group_by("error_class").agg(pl.col("rule_id").unique().sort().str.join(",").alias("rules"))
    )
    per_class = per_class.join(rules_hit, on="error_class", how="left")
    year_reports = reports.filter(pl.col("report_year").cast(pl.Int64) == year)
    clean = year_reports.filter(~pl.col("uscc").is_in(labels["uscc"].implode()))
    bh = findings.filter(pl.col("severity").is_in(["block", "high"]) & (pl.col("report_year") == year))
    clean_bh = clean.filter(pl.col("uscc").is_in(bh["uscc"].implode()))
    noisy_rules = (
        bh.filter(pl.col("uscc").is_in(clean_bh["uscc"].implode())).group_by("rule_id").len().sort("len", descending=True)
    )
    return {
        "recall": lab["detected"].mean(),
        "per_class": per_class,
        "clean_reports": clean.height,
        "clean_block_high": clean_bh.height,
        "clean_block_high_share": clean_bh.height / clean.height if clean.height else 0.0,
        "noisy_rules": noisy_rules,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("findings", type=Path)
    p.add_argument("county", type=Path)
    p.add_argument("--year", type=int, default=2025)
    a = p.parse_args()
    result = evaluate(
        pl.read_csv(a.findings, infer_schema=False),
        pl.read_csv(a.county / "injected_errors.csv", infer_schema=False),
        pl.read_csv(a.county / "reports.csv", infer_schema=False, columns=["uscc", "report_year"]),
        a.year,
    )
    print(f"Overall recall: {result['recall']:.2%}")
    print(f"Clean reports with a block/high finding: {result['clean_block_high']} of {result['clean_reports']} "
          f"({result['clean_block_high_share']:.3%})")
    print("\n| category | error class | injected | detected | recall | rules that caught it |\n|---|---|---:|---:|---:|---|")
    for r in result["per_class"].iter_rows(named=True):
        print(f"| {r['category']} | {r['error_class']} | {r['injected']} | {r['detected']} | {r['recall']:.1%} | {r['rules'] or ''} |")
    if result["noisy_rules"].height:
        print("\nBlock/high rules firing on clean reports:", dict(result["noisy_rules"].iter_rows()))
    ok = result["recall"] >= 0.98 and result["per_class"]["recall"].min() >= 0.90 and result["clean_block_high_share"] <= 0.005
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
