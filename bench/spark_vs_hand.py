"""qifu's Spark path against the same rules written by hand as one Spark SQL job (issue 18).

Both read the six source relations as Parquet, evaluate the 16 rules of bench/national.py's
comparison (the ones a person writes in plain SQL), render a Chinese message per finding and
have the executors write the findings as Parquet partitioned by rule. qifu builds its whole
context from only the columns, joins, sources and aggregates the chosen rules and their
messages read (as it does for any choice of rules); the hand-written job joins only what those
16 rules read too. Each run is a
process of its own: wall time, the Python driver's peak memory and the JVM's (in local mode the
JVM holds the driver and the executors).

    .venv/bin/python bench/spark_vs_hand.py --reports 1000000 [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from national import COMPARE_RULES, RELATIONS, replicate
from qifu.engine.rules.context import needs

MOBILE = r"(\+?86-?)?1(3[0-9]|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8[0-9]|9[0-35-9])[0-9]{8}"
LANDLINE = r"0[0-9]{2,3}-?[0-9]{7,8}(-[0-9]{1,6})?"
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
POST_PREFIXES = ("01,02,03,04,05,06,07,10,11,12,13,15,16,20,21,22,23,24,25,26,27,30,31,32,33,34,35,36,40,41,42,"
                 "43,44,45,46,47,51,52,53,54,55,56,57,61,62,63,64,65,66,67,71,72,73,74,75,81,83,84,85").split(",")


def hand_sql() -> str:
    """The 16 rules, one pass over reports joined with the registry, a message each."""
    def full(col: str, pattern: str) -> str:
        escaped = pattern.replace("\\", "\\\\")  # a backslash is an escape in Spark SQL's string literals
        return f"{col} RLIKE '^(?:{escaped})$'"

    prefixes = ", ".join(f"'{p}'" for p in POST_PREFIXES)
    rules = [
        ("AR-01", "entity_type = 'enterprise' AND abs(total_assets - total_liabilities - total_equity) > greatest(0.01, 0.01 * abs(total_assets))",
         "concat('资产总额', total_assets, '万元不等于负债总额', total_liabilities, '万元与所有者权益', total_equity, '万元之和')"),
        ("AR-02", "entity_type = 'enterprise' AND main_business_revenue > total_revenue + greatest(0.01, 0.005 * greatest(abs(main_business_revenue), abs(total_revenue)))",
         "concat('主营业务收入', main_business_revenue, '万元大于营业总收入', total_revenue, '万元')"),
        ("AR-03", "entity_type = 'enterprise' AND net_profit > total_profit + greatest(0.01, 0.005 * greatest(abs(net_profit), abs(total_profit))) AND total_profit >= 0",
         "concat('净利润', net_profit, '万元大于利润总额', total_profit, '万元')"),
        ("AR-04", "entity_type = 'enterprise' AND net_profit > 0 AND total_profit < 0",
         "concat('利润总额为负（', total_profit, '万元）而净利润为正（', net_profit, '万元）')"),
        ("AR-07", "entity_type IN ('enterprise', 'cooperative') AND employees_female > employees",
         "concat('女性从业人数', employees_female, '人多于从业人数', employees, '人')"),
        ("AR-12", "entity_type = 'enterprise' AND total_tax_paid > total_revenue AND total_revenue > 0",
         "concat('纳税总额', total_tax_paid, '万元大于营业总收入', total_revenue, '万元')"),
        ("AR-13", "entity_type = 'enterprise' AND total_profit > total_revenue AND total_revenue > 0",
         "concat('利润总额', total_profit, '万元大于营业总收入', total_revenue, '万元')"),
        ("AR-14", "entity_type = 'enterprise' AND total_liabilities > 0 AND total_assets = 0",
         "concat('负债总额', total_liabilities, '万元而资产总额为0')"),
        ("FM-01", f"trim(phone) <> '' AND NOT {full('phone', MOBILE)} AND NOT {full('phone', LANDLINE)}",
         "concat('联系电话“', phone, '”不是有效的手机或固定电话号码')"),
        ("FM-03", f"trim(postcode) <> '' AND (NOT {full('postcode', '[0-9]{6}')} OR substr(postcode, 1, 2) NOT IN ({prefixes}))",
         "concat('邮政编码“', postcode, '”不是有效的6位邮政编码')"),
        ("FM-05", f"trim(email) <> '' AND NOT {full('email', EMAIL)}", "concat('电子邮箱“', email, '”格式不正确')"),
        ("CP-07", "entity_type IN ('enterprise', 'cooperative') AND (trim(main_business_activity) IN ('1', '无', '/', '-', '123', '.', '0', '？', '?') OR length(trim(main_business_activity)) < 2)",
         "concat('主营业务活动“', main_business_activity, '”没有写清楚')"),
        ("CP-08", "entity_type IN ('enterprise', 'cooperative') AND employees_female IS NULL AND employees > 0",
         "concat('从业人数', employees, '人，女性从业人数未填')"),
        ("LC-03", "coalesce(total_revenue, turnover, coop_sales) > 0 AND employees = 0",
         "concat('有营业收入（', coalesce(total_revenue, turnover, coop_sales), '万元）而从业人数为0')"),
        ("UM-04", "entity_type = 'enterprise' AND total_assets >= 100000 AND employees <= 10 AND registered_capital <= 100",
         "concat('资产总额', total_assets, '万元，从业人数仅', employees, '人，注册资本', registered_capital, '万元')"),
        ("UM-08", "entity_type = 'enterprise' AND total_tax_paid / nullif(total_revenue, 0) > 0.5 AND total_revenue > 10",
         "concat('纳税总额', total_tax_paid, '万元超过营业总收入', total_revenue, '万元的一半')"),
    ]
    arms = ",\n    ".join(f"IF({cond}, named_struct('rule_id', '{rid}', 'message', {msg}), NULL)" for rid, cond, msg in rules)
    return f"""SELECT uscc, report_year, f.rule_id, f.message FROM (
  SELECT uscc, report_year, explode(filter(array(
    {arms}), x -> x IS NOT NULL)) AS f
  FROM (SELECT r.*, g.entity_type, g.registered_capital FROM reports r JOIN registry g USING (uscc)
        WHERE r.report_year = 2025)
)"""


def jvm_peak_mib(spark) -> float:
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def run_one(kind: str, folder: str) -> None:
    from qifu.engine.rules import spark_engine
    from qifu.engine.rules.loader import load_rules

    spark = spark_engine.session("local[2]")
    out = f"{folder}/out-{kind}"
    t = time.perf_counter()
    if kind == "qifu":
        rules = [r for r in load_rules() if r.id in COMPARE_RULES]
        spark_engine.write(spark, spark_engine.input_paths(folder), 2025, rules, out)
    else:
        for name in ("reports", "registry"):
            spark.read.parquet(f"{folder}/{name}.parquet").createOrReplaceTempView(name)
        spark.sql(hand_sql()).write.mode("overwrite").partitionBy("rule_id").parquet(out)
    took = time.perf_counter() - t
    n = spark.read.parquet(out).count()
    print(json.dumps({"kind": kind, "seconds": took, "findings": n, "jvm_peak_mib": jvm_peak_mib(spark),
                      "python_driver_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def phases(folder: str) -> None:
    """Where qifu's time goes: each stage of the same plan materialised in turn (the caches make
    each step reuse the one before)."""
    from qifu.engine.rules import spark_engine
    from qifu.engine.rules.loader import load_rules

    spark = spark_engine.session("local[2]")
    rules = [r for r in load_rules() if r.id in COMPARE_RULES]
    out, t = {}, time.perf_counter()
    hits = spark_engine._plan(spark, spark_engine.input_paths(folder), 2025, rules, carry=True)
    _, aggregates, sources = needs(spark_engine.context_columns(rules))
    for name in sources:
        spark.table(name).count()
    out[f"read and type the sources the rules read ({', '.join(sources)})"] = time.perf_counter() - t
    t = time.perf_counter()
    for name in aggregates:
        spark.table(name).count()
    out[f"county aggregates the rules read ({', '.join(aggregates) or 'none'})"] = time.perf_counter() - t
    t = time.perf_counter()
    spark.table("ctx").count()
    out["context (one wide row per report)"] = time.perf_counter() - t
    t = time.perf_counter()
    spark.table("flags").count()
    out["rule flags"] = time.perf_counter() - t
    t = time.perf_counter()
    hits.count()
    out["values of the hits, with quoted columns"] = time.perf_counter() - t
    t = time.perf_counter()
    spark_engine.findings(spark, spark_engine.input_paths(folder), 2025, rules).write.mode("overwrite") \
        .partitionBy("rule_id").parquet(f"{folder}/out-phases")
    out["messages rendered on the executors and written"] = time.perf_counter() - t
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reports", type=int, default=1_000_000)
    p.add_argument("--keep", type=Path, help="a folder to build the data set in (and reuse)")
    p.add_argument("--run", nargs=2, metavar=("KIND", "FOLDER"))
    p.add_argument("--phases", metavar="FOLDER")
    a = p.parse_args()
    if a.run:
        return run_one(*a.run)
    if a.phases:
        return phases(a.phases)
    import duckdb

    from qifu.engine.rules.parquet import contract_to_parquet
    from qifu.engine.synth import county

    work = a.keep or Path(tempfile.mkdtemp(prefix="qifu-spark-hand-"))
    data = work / f"data-{a.reports}"
    if not (data / "reminders.parquet").exists():
        if not (work / "base" / "reports.parquet").exists():
            county.write(work / "csv", entities=240_000, seed=1)
            contract_to_parquet(work / "csv", work / "base")
        base = {n: str(work / "base" / f"{n}.parquet") for n in RELATIONS}
        per_copy = duckdb.sql(f"SELECT count(*) FROM read_parquet('{base['reports']}') WHERE report_year = 2025").fetchall()[0][0]
        replicate(base, data, math.ceil(a.reports / per_copy))
    results = {}
    for kind in ("hand", "qifu"):
        done = subprocess.run([sys.executable, __file__, "--run", kind, str(data)], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-4000:])
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
        print(results[kind], file=sys.stderr, flush=True)
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{data}/reports.parquet') WHERE report_year = 2025").fetchall()[0][0]
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print(f"{n:,} reports, {len(COMPARE_RULES)} rules, Spark local[2]:\n")
    print("| job | seconds | findings | JVM peak MiB | Python driver peak MiB |\n|---|---:|---:|---:|---:|")
    for kind, label in (("hand", "hand-written Spark SQL"), ("qifu", "qifu (`spark_engine.write`)")):
        r = results[kind]
        print(f"| {label} | {r['seconds']:.1f} | {r['findings']:,} | {r['jvm_peak_mib']:.0f} | {r['python_driver_peak_mib']:.0f} |")
    print(f"\nratio qifu / hand-written: {results['qifu']['seconds'] / results['hand']['seconds']:.2f}")
    done = subprocess.run([sys.executable, __file__, "--phases", str(data)], capture_output=True, text=True)
    if done.returncode == 0:
        print("\nwhere qifu's time goes (each stage materialised in turn):\n\n| stage | seconds |\n|---|---:|")
        for stage, secs in json.loads(done.stdout.strip().splitlines()[-1]).items():
            print(f"| {stage} | {secs:.1f} |")


if __name__ == "__main__":
    main()
