"""Benchmark: the rule engines at provincial and national scale, and against other tools.

    python bench/national.py [--reports 10000000] [--spark-reports 1000000] [--compare-rows 1000000]

1. Synthesises a county of 240,000 entities and turns it into the six source relations as
   Parquet (``qifu.engine.rules.parquet``).
2. Replicates it with fresh, valid credit codes (both check characters recomputed) until the
   report year has the requested number of reports.
3. DuckDB over the Parquet, in child processes (wall time and peak RSS via wait4), with a
   memory limit, entities in hash buckets: first the prepared context, as an import writes it
   (``duckdb_engine.prepare_bucketed``), then the check over it (``evaluate_bucketed``).
4. Spark local[2] on about 1 million reports.
5. On 1 million rows and 16 of the same rules: qifu's compiled rules on DuckDB, the same
   conditions as one hand-written DuckDB query, and pandera (pandas) checks.
Targets (issue 3): 10 M on DuckDB <= 60 s in <= 8 GB; Spark on 1 M completes; pandera >= 10x
slower than qifu; qifu within 1.5x of the hand-written query.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELATIONS = ("registry", "reports", "tax", "social", "shareholders", "reminders")


def child(args: list[str]) -> tuple[float, float, str]:
    """Run this script with ``args`` as its own process: wall seconds, peak MiB, its output
    (also echoed to stderr as soon as it ends, so a later failure loses nothing)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args} failed:\n{out}\n{err[-4000:]}")
    elapsed, mib = time.perf_counter() - started, usage.ru_maxrss / 1024
    print(f"{args[0]}: {elapsed:.1f} s, {mib:.0f} MiB: {out.strip()[-2000:]}", file=sys.stderr, flush=True)
    return elapsed, mib, out.strip()


def new_code_sql(k: str) -> str:
    """SQL for a valid credit code: positions 9-10 become replica ``k`` in base 31, then the
    organisation-code and credit-code check characters are recomputed (the compiler's macros)."""
    from qifu.engine.rules.compiler import expand_macros, parse

    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    c9 = f"substr('{alphabet}', CAST(floor({k} / 31) AS INTEGER) + 1, 1)"
    c10 = f"substr('{alphabet}', CAST({k} % 31 AS INTEGER) + 1, 1)"
    first16 = f"(substr(uscc, 1, 8) || {c9} || {c10} || substr(uscc, 11, 6))"
    org = expand_macros(parse("org_check_char(code_placeholder)"), "duckdb").sql("duckdb")
    first17 = f"({first16} || {org.replace('code_placeholder', first16)})"
    check = expand_macros(parse("uscc_check_char(code_placeholder)"), "duckdb").sql("duckdb")
    return f"({first17} || {check.replace('code_placeholder', first17)})"


MONEY = {f.name for k in ("registry", "reports", "tax", "social", "shareholders")
         for f in __import__("qifu.engine.contract", fromlist=["KINDS"]).KINDS[k].fields if f.type.value == "money"}


def perturbed(column: str) -> str:
    """Copy k of a column: contact details and money made distinct per copy, so that copies
    are unrelated entities (no shared phones, addresses or identical figures across copies)."""
    if column == "phone":
        return ("CASE WHEN length(phone) = 11 AND TRY_CAST(substr(phone, 8, 4) AS INTEGER) IS NOT NULL THEN substr(phone, 1, 7) "
                "|| lpad(CAST((CAST(substr(phone, 8, 4) AS INTEGER) + k * 37) % 10000 AS VARCHAR), 4, '0') "
                "WHEN phone IS NULL OR k = 0 THEN phone ELSE phone || '-' || CAST(k AS VARCHAR) END AS phone")
    if column == "email":
        return "CASE WHEN email IS NULL OR email = '' OR k = 0 THEN email ELSE 'r' || CAST(k AS VARCHAR) || email END AS email"
    if column in ("address", "contact_address"):
        return f"CASE WHEN {column} IS NULL OR k = 0 THEN {column} ELSE {column} || '之' || CAST(k AS VARCHAR) END AS {column}"
    if column in MONEY:
        return f"round({column} * (1 + k / 1000.0), 4) AS {column}"
    return column


def replicate(base: dict[str, str], out: Path, copies: int) -> dict[str, str]:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    code = new_code_sql("k")
    paths = {}
    for name in RELATIONS:
        path = out / f"{name}.parquet"
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{base[name]}')").fetchall()]
        select = ", ".join(f"{code} AS uscc" if c == "uscc" else perturbed(c) for c in cols)
        con.execute(
            f"COPY (SELECT {select} FROM read_parquet('{base[name]}') CROSS JOIN range({copies}) AS r(k)) "
            f"TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 122880)"
        )
        paths[name] = str(path)
    return paths


def prepare_duckdb(folder: str, memory: str, partitions: int) -> None:
    """What an import does for a check: the prepared context, in hash buckets."""
    from qifu.engine.rules import duckdb_engine

    paths = {n: f"{folder}/{n}.parquet" for n in RELATIONS}
    started = time.perf_counter()
    timings = duckdb_engine.prepare_bucketed(paths, 2025, partitions, f"{folder}/prepared", memory)
    print(json.dumps({"seconds": time.perf_counter() - started, "phases": timings}))


def run_duckdb(folder: str, memory: str) -> None:
    """The check: this season's reminder counts joined to the prepared context, and the rules."""
    import duckdb

    from qifu.engine.rules import duckdb_engine
    from qifu.engine.rules.findings import columns_needed
    from qifu.engine.rules.loader import load_rules

    rules = load_rules()
    started = time.perf_counter()
    carry = tuple(sorted(columns_needed(rules) - {"uscc", "report_year"}))
    hits, timings = duckdb_engine.evaluate_bucketed(f"{folder}/prepared", 2025, rules, f"{folder}/reminders.parquet",
                                                    carry, memory)
    elapsed = time.perf_counter() - started
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{folder}/reports.parquet') WHERE report_year = 2025").fetchall()[0][0]
    print(json.dumps({"reports": n, "hits": hits.height, "seconds_in_engine": elapsed, "phases": timings}))


def run_spark(folder: str) -> None:
    from qifu.engine.rules import spark_engine
    from qifu.engine.rules.loader import load_rules

    paths = {n: f"{folder}/{n}.parquet" for n in RELATIONS}
    spark = spark_engine.session("local[2]")
    started = time.perf_counter()
    spark_engine.write(spark, paths, 2025, load_rules(), f"{folder}/findings")  # by the executors
    took = time.perf_counter() - started
    n = spark.read.parquet(paths["reports"]).where("report_year = 2025").count()
    hits = spark.read.parquet(f"{folder}/findings").count()
    print(json.dumps({"reports": n, "hits": hits, "seconds_in_engine": took}))


COMPARE_RULES = ("AR-01", "AR-02", "AR-03", "AR-04", "AR-07", "AR-12", "AR-13", "AR-14", "FM-01", "FM-03", "FM-05",
                 "CP-07", "CP-08", "LC-03", "UM-04", "UM-08")


def compare(folder: str, rows: int) -> None:
    """16 rules on one flat table of `rows` reports: qifu, hand-written DuckDB, pandera."""
    import duckdb
    import numpy as np
    import pandera.pandas as pa

    from qifu.engine.rules.compiler import flags_and_values_sql
    from qifu.engine.rules.loader import load_rules

    con = duckdb.connect()
    con.execute(f"""CREATE TABLE ctx AS SELECT r.*, g.entity_type, g.registered_capital
        FROM read_parquet('{folder}/reports.parquet') r JOIN read_parquet('{folder}/registry.parquet') g USING (uscc)
        WHERE r.report_year = 2025 LIMIT {rows}""")
    rules = [r for r in load_rules() if r.id in COMPARE_RULES]
    flags_sql, values_sql = flags_and_values_sql(rules, "duckdb")
    timings = {}
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE flags AS {flags_sql}")
        qifu_hits = con.sql(values_sql).fetchall()
        best = min(best, time.perf_counter() - t)
    timings["qifu"] = best
    mobile = r"(\+?86-?)?1(3[0-9]|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8[0-9]|9[0-35-9])[0-9]{8}"
    landline = r"0[0-9]{2,3}-?[0-9]{7,8}(-[0-9]{1,6})?"
    email = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    hand = f"""SELECT uscc, rule FROM (SELECT uscc, UNNEST([
        CASE WHEN entity_type = 'enterprise' AND abs(total_assets - total_liabilities - total_equity) > greatest(0.01, 0.01 * abs(total_assets)) THEN 'AR-01' END,
        CASE WHEN entity_type = 'enterprise' AND main_business_revenue > total_revenue + greatest(0.01, 0.005 * greatest(abs(main_business_revenue), abs(total_revenue))) THEN 'AR-02' END,
        CASE WHEN entity_type = 'enterprise' AND net_profit > total_profit + greatest(0.01, 0.005 * greatest(abs(net_profit), abs(total_profit))) AND total_profit >= 0 THEN 'AR-03' END,
        CASE WHEN entity_type = 'enterprise' AND net_profit > 0 AND total_profit < 0 THEN 'AR-04' END,
        CASE WHEN entity_type IN ('enterprise', 'cooperative') AND employees_female > employees THEN 'AR-07' END,
        CASE WHEN entity_type = 'enterprise' AND total_tax_paid > total_revenue AND total_revenue > 0 THEN 'AR-12' END,
        CASE WHEN entity_type = 'enterprise' AND total_profit > total_revenue AND total_revenue > 0 THEN 'AR-13' END,
        CASE WHEN entity_type = 'enterprise' AND total_liabilities > 0 AND total_assets = 0 THEN 'AR-14' END,
        CASE WHEN trim(phone) <> '' AND NOT regexp_full_match(phone, '{mobile}') AND NOT regexp_full_match(phone, '{landline}') THEN 'FM-01' END,
        CASE WHEN trim(postcode) <> '' AND (NOT regexp_full_match(postcode, '[0-9]{{6}}') OR substr(postcode, 1, 2) NOT IN ('01','02','03','04','05','06','07','10','11','12','13','15','16','20','21','22','23','24','25','26','27','30','31','32','33','34','35','36','40','41','42','43','44','45','46','47','51','52','53','54','55','56','57','61','62','63','64','65','66','67','71','72','73','74','75','81','83','84','85')) THEN 'FM-03' END,
        CASE WHEN trim(email) <> '' AND NOT regexp_full_match(email, '{email}') THEN 'FM-05' END,
        CASE WHEN entity_type IN ('enterprise', 'cooperative') AND (trim(main_business_activity) IN ('1', '无', '/', '-', '123', '.', '0', '？', '?') OR length(trim(main_business_activity)) < 2) THEN 'CP-07' END,
        CASE WHEN entity_type IN ('enterprise', 'cooperative') AND employees_female IS NULL AND employees > 0 THEN 'CP-08' END,
        CASE WHEN coalesce(total_revenue, turnover, coop_sales) > 0 AND employees = 0 THEN 'LC-03' END,
        CASE WHEN entity_type = 'enterprise' AND total_assets >= 100000 AND employees <= 10 AND registered_capital <= 100 THEN 'UM-04' END,
        CASE WHEN entity_type = 'enterprise' AND total_tax_paid / nullif(total_revenue, 0) > 0.5 AND total_revenue > 10 THEN 'UM-08' END
        ]) AS rule FROM ctx) WHERE rule IS NOT NULL"""
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        hand_hits = con.sql(hand).fetchall()
        best = min(best, time.perf_counter() - t)
    timings["hand_written_duckdb"] = best
    df = con.sql("SELECT * FROM ctx").df()
    ent = df["entity_type"] == "enterprise"
    ec = df["entity_type"].isin(["enterprise", "cooperative"])

    def eps(a, b):
        return np.maximum(0.01, 0.005 * np.maximum(a.abs(), b.abs()))

    def ok(mask):  # pandera check: True where the row passes
        return ~mask.fillna(False).astype(bool)

    blank = lambda s: s.isna() | (s.str.strip() == "")  # noqa: E731
    checks = [
        pa.Check(lambda d: ok(ent & ((d.total_assets - d.total_liabilities - d.total_equity).abs() > np.maximum(0.01, 0.01 * d.total_assets.abs()))), name="AR-01"),
        pa.Check(lambda d: ok(ent & (d.main_business_revenue > d.total_revenue + eps(d.main_business_revenue, d.total_revenue))), name="AR-02"),
        pa.Check(lambda d: ok(ent & (d.net_profit > d.total_profit + eps(d.net_profit, d.total_profit)) & (d.total_profit >= 0)), name="AR-03"),
        pa.Check(lambda d: ok(ent & (d.net_profit > 0) & (d.total_profit < 0)), name="AR-04"),
        pa.Check(lambda d: ok(ec & (d.employees_female > d.employees)), name="AR-07"),
        pa.Check(lambda d: ok(ent & (d.total_tax_paid > d.total_revenue) & (d.total_revenue > 0)), name="AR-12"),
        pa.Check(lambda d: ok(ent & (d.total_profit > d.total_revenue) & (d.total_revenue > 0)), name="AR-13"),
        pa.Check(lambda d: ok(ent & (d.total_liabilities > 0) & (d.total_assets == 0)), name="AR-14"),
        pa.Check(lambda d: ok(~blank(d.phone) & ~d.phone.str.fullmatch(mobile, na=False) & ~d.phone.str.fullmatch(landline, na=False)), name="FM-01"),
        pa.Check(lambda d: ok(~blank(d.postcode) & ~d.postcode.str.fullmatch(r"[0-9]{6}", na=False)), name="FM-03"),
        pa.Check(lambda d: ok(~blank(d.email) & ~d.email.str.fullmatch(email, na=False)), name="FM-05"),
        pa.Check(lambda d: ok(ec & (d.main_business_activity.str.strip().isin(["1", "无", "/", "-", "123", ".", "0", "？", "?"]) | (d.main_business_activity.str.strip().str.len() < 2))), name="CP-07"),
        pa.Check(lambda d: ok(ec & d.employees_female.isna() & (d.employees > 0)), name="CP-08"),
        pa.Check(lambda d: ok((d.total_revenue.fillna(d.turnover).fillna(d.coop_sales) > 0) & (d.employees == 0)), name="LC-03"),
        pa.Check(lambda d: ok(ent & (d.total_assets >= 100000) & (d.employees <= 10) & (d.registered_capital <= 100)), name="UM-04"),
        pa.Check(lambda d: ok(ent & (d.total_tax_paid / d.total_revenue.replace(0, np.nan) > 0.5) & (d.total_revenue > 10)), name="UM-08"),
    ]
    schema = pa.DataFrameSchema(checks=checks)
    t = time.perf_counter()
    try:
        schema.validate(df, lazy=True)
        pandera_failures = 0
    except pa.errors.SchemaErrors as e:
        pandera_failures = len(e.failure_cases)
    timings["pandera"] = time.perf_counter() - t
    print(json.dumps({"rows": len(df), "timings": timings, "qifu_hits": len(qifu_hits), "hand_hits": len(hand_hits),
                      "pandera_failure_cases": pandera_failures}))


def _rounded(phases: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in phases.items())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reports", type=int, default=10_000_000)
    p.add_argument("--spark-reports", type=int, default=1_000_000)
    p.add_argument("--compare-rows", type=int, default=1_000_000)
    p.add_argument("--memory", default="5GB")
    p.add_argument("--partitions", type=int, default=16)
    p.add_argument("--keep", type=Path)
    p.add_argument("--prepare-duckdb")
    p.add_argument("--run-duckdb")
    p.add_argument("--run-spark")
    p.add_argument("--compare")
    a = p.parse_args()
    if a.prepare_duckdb:
        return prepare_duckdb(a.prepare_duckdb, a.memory, a.partitions)
    if a.run_duckdb:
        return run_duckdb(a.run_duckdb, a.memory)
    if a.run_spark:
        return run_spark(a.run_spark)
    if a.compare:
        return compare(a.compare, a.compare_rows)

    from qifu.engine.rules.parquet import contract_to_parquet
    from qifu.engine.synth import county

    work = a.keep or Path(tempfile.mkdtemp(prefix="qifu-national-"))
    rows = []
    county.write(work / "csv", entities=240_000, seed=1)
    base = contract_to_parquet(work / "csv", work / "base")
    import duckdb

    per_copy = duckdb.sql(f"SELECT count(*) FROM read_parquet('{base['reports']}') WHERE report_year = 2025").fetchall()[0][0]
    for label, target in (("national", a.reports), ("spark", a.spark_reports)):
        copies = math.ceil(target / per_copy)
        if a.keep and (work / label / "reminders.parquet").exists():
            continue
        t = time.perf_counter()
        replicate(base, work / label, copies)
        rows.append((f"build {label} data set ({copies} copies of {per_copy} reports)", time.perf_counter() - t, float("nan")))
    secs, mib, out = child(["--prepare-duckdb", str(work / "national"), "--memory", a.memory,
                            "--partitions", str(a.partitions)])
    info = json.loads(out.splitlines()[-1])
    rows.append((f"DuckDB: prepare the context from the six sources in {a.partitions} hash buckets "
                 f"(what an import does), whole process; phases {_rounded(info['phases'])}", secs, mib))
    secs, mib, out = child(["--run-duckdb", str(work / "national"), "--memory", a.memory])
    info = json.loads(out.splitlines()[-1])
    rows.append((f"DuckDB: check {info['reports']:,} reports, all rules ({info['hits']:,} findings) over the prepared "
                 f"context, whole process; phases {_rounded(info['phases'])}", secs, mib))
    rows.append(("DuckDB: of which in the engine", info["seconds_in_engine"], float("nan")))
    shutil.rmtree(work / "national" / "prepared", ignore_errors=True)
    secs, mib, out = child(["--run-spark", str(work / "spark")])
    info = json.loads(out.splitlines()[-1])
    rows.append((f"Spark local[2]: {info['reports']:,} reports ({info['hits']:,} findings), whole process", secs, mib))
    rows.append(("Spark: of which in the engine", info["seconds_in_engine"], float("nan")))
    secs, mib, out = child(["--compare", str(work / "spark"), "--compare-rows", str(a.compare_rows)])
    cmp = json.loads(out.splitlines()[-1])
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}\n")
    print("| step | seconds | peak MiB |\n|---|---:|---:|")
    for label, s, m in rows:
        print(f"| {label} | {s:.1f} | {'' if m != m else f'{m:.0f}'} |")
    t = cmp["timings"]
    print(f"\n16 rules on {cmp['rows']:,} rows (best of 3 for DuckDB; hits: qifu {cmp['qifu_hits']}, hand-written "
          f"{cmp['hand_hits']}, pandera failure cases {cmp['pandera_failure_cases']}):\n")
    print("| engine | seconds | relative to qifu |\n|---|---:|---:|")
    for k in ("qifu", "hand_written_duckdb", "pandera"):
        print(f"| {k} | {t[k]:.3f} | {t[k] / t['qifu']:.2f}x |")


if __name__ == "__main__":
    main()
