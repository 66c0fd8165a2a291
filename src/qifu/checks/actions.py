"""Running the quality rules over a year's reports, storing and tracking the findings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
from django.db import connection, transaction
from django.utils import timezone

from qifu import analytics, bulk
from qifu.analytics import sources
from qifu.checks.models import CheckRun, Finding
from qifu.engine.contract import FINDINGS_COLUMNS
from qifu.engine.rules import duckdb_engine
from qifu.engine.rules import findings as findings_mod
from qifu.engine.rules.loader import load_rules, ruleset_version


@dataclass
class CheckResult:
    run: CheckRun
    findings: pl.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


def run_check(year: int, engine: str = "duckdb", out: Path | None = None, master: str = "local[2]") -> CheckResult:
    rules = load_rules()
    timings: dict[str, float] = {}
    started = timezone.now()
    t = time.perf_counter()
    data = _sources(year, prepared=engine == "duckdb")
    timings["fetch"] = time.perf_counter() - t
    t = time.perf_counter()
    aggregates: dict = {}
    if engine == "duckdb":
        hits, ctx_rows, aggregates = _run_duckdb(data, year, rules)
        timings["engine"] = time.perf_counter() - t
        t = time.perf_counter()
        found = findings_mod.render(hits, ctx_rows, rules)
        timings["render"] = time.perf_counter() - t
    elif engine == "spark":  # messages rendered on the executors
        from qifu.engine.rules import spark_engine

        found = spark_engine.run_local(data, year, rules, master)
        timings["engine"] = time.perf_counter() - t
    else:
        raise ValueError(f"unknown engine {engine!r} (duckdb or spark)")
    t = time.perf_counter()
    all_revisions = _current_revisions(data, year)
    run = _store(year, engine, found, all_revisions, started, aggregates)
    timings["store"] = time.perf_counter() - t
    if out is not None:
        t = time.perf_counter()
        write_findings(found, Path(out))
        timings["write"] = time.perf_counter() - t
    return CheckResult(run, found, timings)


def _sources(year: int, prepared: bool = True) -> dict[str, pa.Table | str]:
    """The analytical copy of each relation, exported first if stale, and the year's prepared
    context (``context``), built first if stale; but the reminder history, which grows every
    day of a season, is read from the database for the one season a check needs when its copy
    is stale (re-exporting 1.6 million contacts took 11 s; the schedule in `qifu serve`
    refreshes the copy after it sends). Inside a transaction: the database."""
    if connection.in_atomic_block:
        return sources.fetch(year)
    data: dict[str, pa.Table | str] = analytics.paths(tuple(n for n in analytics.TABLES if n != "reminders"))
    if prepared:
        data["context"] = analytics.context(year, inputs_checked=True)
    if analytics.is_current("reminders"):
        data["reminders"] = analytics.path("reminders")
        if Path(analytics.path("reminder_counts")).exists():  # written with it since 2026-11
            data["reminder_counts"] = analytics.path("reminder_counts")
    else:
        data.update(sources.fetch(year, ("reminders",)))
    return data


def _run_duckdb(data, year, rules):
    if "context" in data:
        con = duckdb_engine.connect_prepared(data["context"], year, data.get("reminders"), data.get("reminder_counts"))
    else:
        con = duckdb_engine.connect(data, year=year)
        duckdb_engine.build_context(con, year)
    carry = analytics.carry(rules, {r[0] for r in con.execute("DESCRIBE ctx").fetchall()})
    hits = duckdb_engine.evaluate(con, rules, cache_dir=analytics.plan_cache(), carry=carry)
    aggregates = {"peer": con.sql("SELECT * FROM agg_peer").pl().to_dicts(),
                  "industry": con.sql("SELECT * FROM agg_industry").pl().to_dicts()}
    con.close()
    return hits, None, aggregates


def _current_revisions(data: dict[str, pa.Table | str], year: int) -> dict[str, int]:
    src = data["reports"]
    rep = pl.scan_parquet(src) if isinstance(src, str) else pl.from_arrow(src).lazy()
    rep = rep.filter(pl.col("report_year") == year).select("uscc", pl.col("revision").cast(pl.Int64)).collect()
    return dict(zip(rep["uscc"].to_list(), rep["revision"].to_list()))


def _store(year, engine, found: pl.DataFrame, all_revisions: dict[str, int], started, aggregates) -> CheckRun:
    reports_checked = len(all_revisions)
    counts = found.group_by("rule_id").len().sort("rule_id") if found.height else None
    with transaction.atomic():
        run = CheckRun.objects.create(
            report_year=year, engine=engine, ruleset_version=ruleset_version(), started_at=started,
            reports_checked=reports_checked, findings=found.height,
            rule_counts=dict(counts.iter_rows()) if counts is not None else {}, aggregates=aggregates,
        )
        existing = {
            (u, k): (i, s)
            for i, u, k, s in Finding.objects.filter(report_year=year).values_list("id", "entity_id", "rule_key", "status")
        }
        now_keys = set(zip(found["uscc"].to_list(), found["rule_key"].to_list()))
        frame = found.with_columns(
            pl.col("uscc").replace_strict(all_revisions, default=1, return_dtype=pl.Int64).alias("revision")
        )
        known = pl.DataFrame([{"uscc": u, "rule_key": k} for u, k in existing], schema={"uscc": pl.Utf8, "rule_key": pl.Utf8})
        new = frame.join(known, on=["uscc", "rule_key"], how="anti")
        again = frame.join(known, on=["uscc", "rule_key"], how="semi")
        bulk.insert(
            Finding._meta.db_table,
            new.select(
                pl.col("uscc"), pl.col("report_year"), "rule_id", "rule_key", "severity", "fields", "message",
                "suggestion", pl.lit("open").alias("status"), "revision",
                pl.lit(run.id).alias("first_run_id"), pl.lit(run.id).alias("last_run_id"),
            ),
        )
        if again.height:
            ids = [existing[(u, k)][0] for u, k in zip(again["uscc"], again["rule_key"])]
            # a value the enterprise explained stays explained while the report is unchanged
            status = ["confirmed" if existing[(u, k)][1] == "confirmed" else "open"
                      for u, k in zip(again["uscc"], again["rule_key"])]
            bulk.update(
                Finding._meta.db_table,
                again.select(
                    pl.Series("id", ids), "severity", "fields", "message", "suggestion",
                    pl.Series("status", status, dtype=pl.Utf8), pl.lit(run.id).alias("last_run_id"),
                    pl.lit(None, dtype=pl.Int64).alias("resolved_run_id"),
                    pl.lit(None, dtype=pl.Int64).alias("resolved_revision"),
                    pl.lit(None, dtype=pl.Boolean).alias("resolved_by_correction"),
                ),
                ["id"],
            )
        gone = [(i, u) for (u, k), (i, s) in existing.items() if s in ("open", "confirmed") and (u, k) not in now_keys]
        if gone:
            by_id = {f.id: f for f in Finding.objects.filter(id__in=[i for i, _ in gone]).only("id", "revision")}
            rows = [
                {"id": i, "status": "resolved", "resolved_run_id": run.id,
                 "resolved_revision": all_revisions.get(u),
                 "resolved_by_correction": all_revisions.get(u, 0) > by_id[i].revision}
                for i, u in gone
            ]
            bulk.update(Finding._meta.db_table, pl.DataFrame(rows, schema={
                "id": pl.Int64, "status": pl.Utf8, "resolved_run_id": pl.Int64, "resolved_revision": pl.Int64,
                "resolved_by_correction": pl.Boolean}), ["id"])
        run.new_findings = new.height
        run.resolved = len(gone)
        run.finished_at = timezone.now()
        run.save(update_fields=["new_findings", "resolved", "finished_at"])
    return run


def write_findings(found: pl.DataFrame, path: Path) -> None:
    """Contract §2.1: CSV, XLSX or JSON (array of objects) by the file's extension."""
    from qifu import spreadsheets

    spreadsheets.write_frame(found.select(FINDINGS_COLUMNS), path, sheet="校验结果")
